"""Frame sources: where the live loop's pictures come from.

Every source gives RGB uint8 frames, each with its number and capture time. `open_source`
picks one from a spec: `scenes` (the synthetic scene generator as a camera), an image, a
folder or glob of images, a video file, a V4L2 device (`/dev/video0` or `0`), an RTSP/HTTP
stream, or `picamera2` (a Raspberry Pi camera). Video goes through PyAV (`edge.live.video`),
the Pi camera through picamera2 (`edge.live.picamera`); both are imported only when used.
"""

from __future__ import annotations

import glob
import time
from pathlib import Path

import numpy as np

from edge.errors import FlorenceEdgeError
from edge.live.frames import CameraSettings, Frame, Source
from edge.preprocess import load_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mjpeg", ".mjpg", ".h264"}
_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def _stamp(image: np.ndarray, number: int, display: np.ndarray | None = None,
           stream_time: float | None = None) -> Frame:
    return Frame(image, number, time.time(), time.monotonic(), display, stream_time)


class ImageSource(Source):
    """Still images, each a frame, in name order, played as a 10 fps camera would deliver them (all
    of them with `every_frame`); an unreadable one is skipped and counted."""

    fps = 10.0

    def __init__(self, paths: list[Path], name: str):
        self.paths = paths
        self.name = name
        self._next = 0
        self._base = 0  # numbers used by earlier passes (--loop keeps counting)

    def read(self) -> Frame | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                number = self._base + self._next - 1
                return _stamp(np.asarray(load_image(path)), number, stream_time=number / self.fps)
            except FlorenceEdgeError:
                self.skipped += 1
        return None

    def rewind(self) -> None:
        self._base += len(self.paths)
        self._next = 0


class ScenesSource(Source):
    """The synthetic scene generator as a camera: held-out scenes (seeds from `seed`), each held for
    `hold` frames at `fps`, with a little sensor noise on every frame, as a real camera has."""

    live = True

    def __init__(self, seed: int = 1_000_000, fps: float = 10.0, hold: int = 20, noise: float = 2.0):
        from edge.demo.scenes import make_scene

        self._make = make_scene
        self.name = "scenes"
        self.seed, self.fps, self.hold, self.noise = seed, fps, hold, noise
        self._number = 0
        self._scene = None
        self._rng = np.random.default_rng(seed)
        self._last = time.monotonic()

    def scene(self, number: int):
        """The scene shown in frame `number` (its ground truth, for tests and demos)."""
        return self._make(self.seed + number // self.hold)

    def read(self) -> Frame:
        delay = self._last + 1 / self.fps - time.monotonic()
        if delay > 0:  # a camera delivers at its own pace
            time.sleep(delay)
        self._last = time.monotonic()
        number = self._number
        self._number += 1
        if number % self.hold == 0 or self._scene is None:
            self._scene = np.asarray(self.scene(number).image, dtype=np.int16)
        noisy = self._scene + self._rng.normal(0, self.noise, self._scene.shape).astype(np.int16)
        return _stamp(np.clip(noisy, 0, 255).astype(np.uint8), number, stream_time=number / self.fps)


def open_source(spec: str, size_hint: tuple[int, int] | None = None, camera: CameraSettings | None = None,
                **options) -> Source:
    """A source for `spec` (see the module doc); `size_hint` (width, height): the picture size the
    model works on, which picamera2 uses for its low-resolution stream; `camera`: what a picamera2 or
    V4L2 camera is asked for. One-line `FlorenceEdgeError` when it cannot be opened."""
    camera = camera or CameraSettings()
    if not isinstance(spec, str) or not spec.strip():
        raise FlorenceEdgeError("--source is empty: name a camera, file, folder, stream, 'scenes' or 'picamera2'")
    if camera.password_file and not spec.lower().startswith(_STREAM_SCHEMES):
        raise FlorenceEdgeError(f"--source-password-file is for network cameras (rtsp://USER@CAMERA/PATH), not {spec}")
    if spec == "scenes" or spec.startswith("scenes:"):
        seed = spec.partition(":")[2]
        return ScenesSource(int(seed) if seed.isdigit() else 1_000_000, **options)
    if spec == "picamera2" or spec.startswith("picamera2:"):
        from edge.live.picamera import PicameraSource

        return PicameraSource(int(spec.partition(":")[2] or 0), size_hint, camera)
    path = Path(spec).expanduser()
    if spec.isdigit() or spec.startswith("/dev/video"):
        from edge.live.video import VideoSource

        return VideoSource(f"/dev/video{spec}" if spec.isdigit() else spec, device=True, camera=camera)
    if spec.lower().startswith(_STREAM_SCHEMES):
        from edge.live.video import VideoSource

        return VideoSource(spec, stream=True, camera=camera)
    if path.is_dir():
        return _images(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), spec)
    if any(c in spec for c in "*?["):
        return _images([Path(p) for p in sorted(glob.glob(spec)) if Path(p).suffix.lower() in IMAGE_SUFFIXES], spec)
    if not path.exists():
        raise FlorenceEdgeError(f"source not found: {spec}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _images([path], spec)
    from edge.live.video import VideoSource

    return VideoSource(str(path))


def _images(paths: list[Path], spec: str) -> ImageSource:
    if not paths:
        raise FlorenceEdgeError(f"no images in {spec} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return ImageSource(paths, spec)
