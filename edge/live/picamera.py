"""Raspberry Pi cameras through picamera2 (libcamera): `main` for viewing, `lores` for the model.

picamera2 comes from apt on Raspberry Pi OS (`sudo apt install python3-picamera2`) and is not
on PyPI in a form that works; a virtual environment sees it only if made with
`--system-site-packages`. It is imported when this source opens, never before.

Of picamera2's API this uses: `Picamera2(camera_num)`, `create_video_configuration(main=,
lores=, buffer_count=, controls=)`, `configure`, `start`, `stop`, `close`, `capture_request(wait=False)`
with `wait(job, timeout=)`, a request's `make_array(name)` and `release()`, the `pre_callback`
attribute, `MappedArray(request, name)` (its `.array`), and for clips `encoders.H264Encoder(bitrate=,
repeat=, iperiod=)`, `outputs.Output` (its `outputframe(frame, keyframe, timestamp)`, microseconds)
and `start_encoder(encoder, output, name=)`. The tests' stand-in implements exactly that subset.
"""

from __future__ import annotations

import time

import numpy as np

from edge.errors import FlorenceEdgeError
from edge.live.frames import CameraSettings, Frame, Source, SourceLost

MAIN_SIZE = (1280, 720)
_TIMEOUT = 5.0  # s without a frame: the camera is lost (the ribbon came loose, the ISP stalled)
# Limited-range BT.709 (what a video configuration's Rec709 colour space means), Y'CbCr -> R'G'B'.
_YUV_TO_RGB = np.array([[1.164, 0.0, 1.793], [1.164, -0.213, -0.533], [1.164, 2.112, 0.0]], np.float32)


def _picamera2():
    try:
        import picamera2
    except ImportError:
        raise FlorenceEdgeError(
            "the picamera2 source needs picamera2, which comes from apt on Raspberry Pi OS: "
            "sudo apt install python3-picamera2 (in a virtual environment made with --system-site-packages)"
        ) from None
    return picamera2


def lores_size(model_size: tuple[int, int] | None, main: tuple[int, int] = MAIN_SIZE) -> tuple[int, int]:
    """The low-resolution stream: the main stream's aspect, no larger than the model's input (the
    model resizes whatever it gets), even sides as YUV420 needs."""
    if model_size is None:
        model_size = (768, 768)
    scale = min(model_size[0] / main[0], model_size[1] / main[1], 1.0)
    return max(2, int(main[0] * scale) // 2 * 2), max(2, int(main[1] * scale) // 2 * 2)


def yuv420_to_rgb(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """picamera2's YUV420 array ((h * 3 / 2) x w: Y, then U and V at half size) -> h x w x 3 RGB."""
    width, height = size
    y = planes[:height].astype(np.float32) - 16
    chroma = planes[height:].reshape(2, height // 2, width // 2).astype(np.float32) - 128
    u, v = (np.repeat(np.repeat(c, 2, axis=0), 2, axis=1) for c in chroma)
    rgb = np.stack([y, u, v], axis=-1) @ _YUV_TO_RGB.T
    return np.clip(rgb, 0, 255).astype(np.uint8)


class PicameraSource(Source):
    live = True

    def __init__(self, camera_num: int = 0, model_size: tuple[int, int] | None = None,
                 settings: CameraSettings | None = None):
        settings = settings or CameraSettings()
        self.name = f"picamera2:{camera_num}"
        self.camera_num = camera_num
        self.main = tuple(settings.main or MAIN_SIZE)
        self.lores = tuple(settings.lores or lores_size(model_size, self.main))
        # a frame duration pins the sensor's rate (in microseconds, as libcamera counts it)
        self.controls = {"FrameDurationLimits": (int(1e6 / settings.fps),) * 2} if settings.fps else {}
        self._camera = None
        self._number = 0
        self._on_packet = None  # clips: H.264 of the lores stream from the camera's encoder
        self._iperiod = 10
        self.first_open()

    def _open(self) -> None:
        lib = _picamera2()
        try:
            camera = lib.Picamera2(self.camera_num)
        except (IndexError, RuntimeError, OSError) as exc:  # no camera, or held by another process
            raise SourceLost(f"no camera {self.camera_num} for picamera2 ({exc or type(exc).__name__})") from None
        # RGB888 is B, G, R in memory; the lores stream is YUV420, the one format every Pi's ISP gives it.
        config = camera.create_video_configuration(main={"size": self.main, "format": "RGB888"},
                                                   lores={"size": self.lores, "format": "YUV420"}, buffer_count=4,
                                                   controls=self.controls)
        camera.configure(config)
        camera.pre_callback = self._pre_callback
        camera.start()
        self._camera = camera
        if self._on_packet is not None:
            self._start_encoder()
        self.on_main = None  # set by the overlay: draws onto `main` before preview, recording and viewers

    def encode(self, on_packet, fps: float) -> tuple[int, int]:
        """Hand `on_packet(data, keyframe, seconds)` the lores stream as H.264 (Annex B, headers on every
        keyframe, one a second), from now and after every reopen; returns the video's size. The Pi 4's
        hardware encoder does it (picamera2 encodes in software on a Pi 5, which has none)."""
        self._on_packet, self._iperiod = on_packet, max(1, round(fps))
        if self._camera is not None:
            self._start_encoder()
        return self.lores

    def _start_encoder(self) -> None:
        from picamera2.encoders import H264Encoder
        from picamera2.outputs import Output

        on_packet = self._on_packet

        class Packets(Output):
            def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
                # the sensor's timestamp (CLOCK_MONOTONIC, us): the clock `Frame.seconds` counts in
                on_packet(bytes(frame), keyframe, (timestamp or 0) / 1e6)

        encoder = H264Encoder(bitrate=1_000_000, repeat=True, iperiod=self._iperiod)
        self._camera.start_encoder(encoder, Packets(), name="lores")

    def _pre_callback(self, request) -> None:
        if self.on_main is not None:
            with _picamera2().MappedArray(request, "main") as mapped:
                self.on_main(mapped.array)

    def read(self) -> Frame:
        if self._camera is None:
            raise SourceLost(f"{self.name} is closed")
        try:
            request = self._camera.wait(self._camera.capture_request(wait=False), timeout=_TIMEOUT)
        except (TimeoutError, RuntimeError, OSError) as exc:
            raise SourceLost(f"{self.name}: no frame for {_TIMEOUT:.0f} s ({exc or type(exc).__name__})") from None
        try:
            image = yuv420_to_rgb(request.make_array("lores"), self.lores)
            display = request.make_array("main")[:, :, ::-1]  # B, G, R -> R, G, B (a view)
            display = np.ascontiguousarray(display)
        finally:
            request.release()
        number = self._number
        self._number += 1
        return Frame(image, number, time.time(), time.monotonic(), display)

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop()
            finally:
                self._camera.close()
                self._camera = None
