"""A stand-in for picamera2, for tests on machines without a Raspberry Pi camera.

It implements exactly the subset `edge.live.picamera` uses, with picamera2's behaviour:
`Picamera2(camera_num)` (IndexError without that camera), `create_video_configuration(main=,
lores=, buffer_count=, controls=)`, `configure`, `start`, `stop`, `close`, `capture_request(wait=False)`
returning a job for `wait(job, timeout=)` (TimeoutError when no frame comes), a request's
`make_array(name)` and `release()`, `pre_callback` (called with each request before the
application gets it) and `MappedArray(request, name)` with a writable `.array`. Formats as
picamera2 delivers them: main RGB888 is B, G, R in memory; lores YUV420 is (h * 3 / 2) x w.
`start_encoder(encoder, output, name=)` encodes that stream's frames (`encoders`, `outputs`), with
the sensor's timestamp (CLOCK_MONOTONIC, microseconds).

Pictures come from `SCENE` (a callable frame number -> PIL image); `CAMERAS` cameras exist;
while `UNPLUGGED` is set, no frame arrives.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

CAMERAS = 1
UNPLUGGED = False
SCENE = None
FRAME_PERIOD = 0.02
opened: list = []


def _yuv420(rgb: np.ndarray) -> np.ndarray:
    """RGB -> limited-range BT.709 YUV420 planes, as the ISP writes the lores stream."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16 + 0.1826 * r + 0.6142 * g + 0.0620 * b
    u = 128 - 0.1006 * r - 0.3386 * g + 0.4392 * b
    v = 128 + 0.4392 * r - 0.3989 * g - 0.0403 * b
    half = [c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3)) for c in (u, v)]
    planes = np.concatenate([y.ravel(), half[0].ravel(), half[1].ravel()])
    return np.clip(np.round(planes), 0, 255).astype(np.uint8).reshape(-1, rgb.shape[1])


class _Request:
    def __init__(self, arrays: dict):
        self._arrays = arrays
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        return self._arrays[name].copy()

    def release(self) -> None:
        self.released = True


class MappedArray:
    def __init__(self, request: _Request, stream: str):
        self.array = request._arrays[stream]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Picamera2:
    def __init__(self, camera_num: int = 0):
        if camera_num >= CAMERAS:
            raise IndexError("list index out of range")
        self.pre_callback = None
        self._config = None
        self._started = False
        self._number = 0
        self._encoding = None  # (encoder, stream name)
        opened.append(self)

    def create_video_configuration(self, main=None, lores=None, buffer_count=6, controls=None) -> dict:
        return {"main": dict(main or {}), "lores": dict(lores) if lores else None, "buffer_count": buffer_count,
                "controls": dict(controls or {})}

    def configure(self, config: dict) -> None:
        assert config["main"]["format"] == "RGB888" and config["lores"]["format"] == "YUV420"
        assert config["lores"]["size"][0] <= config["main"]["size"][0]
        self._config = config

    def start(self) -> None:
        assert self._config is not None, "configure before start"
        self._started = True

    def stop(self) -> None:
        self._started = False
        self._encoding = None

    def start_encoder(self, encoder=None, output=None, pts=None, quality=None, name=None) -> None:
        assert self._started, "start the camera before its encoder"
        encoder.output = output
        self._encoding = (encoder, name or "main")

    def close(self) -> None:
        self._started = False
        with contextlib.suppress(ValueError):
            opened.remove(self)

    def capture_request(self, wait=None):
        assert wait is False
        return self._number

    def wait(self, job, timeout=None):
        if UNPLUGGED or not self._started:
            time.sleep(min(timeout or 0, 0.05))
            raise TimeoutError("no frame")
        time.sleep(FRAME_PERIOD)
        picture = SCENE(self._number)
        self._number += 1
        main = np.asarray(picture.resize(self._config["main"]["size"]).convert("RGB"))[:, :, ::-1].copy()
        lores = _yuv420(np.asarray(picture.resize(self._config["lores"]["size"]).convert("RGB")))
        request = _Request({"main": main, "lores": lores})
        if self._encoding is not None:
            encoder, name = self._encoding
            assert name == "lores", "the stand-in encodes the YUV420 lores stream"
            encoder.encode_yuv420(lores, self._config["lores"]["size"], int(time.monotonic() * 1e6))
        if self.pre_callback is not None:
            self.pre_callback(request)
        return request
