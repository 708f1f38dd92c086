"""`--record OUT.mp4`: the annotated frames as H.264 video (PyAV's libx264), written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

from PIL import Image

from edge.errors import FlorenceEdgeError
from edge.files import publish
from edge.live.video import _av

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov"}


def check_target(path, force: bool = False) -> Path:
    """Refuse, before anything runs, a target that is not a video name, has no folder, or exists (without `force`)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise FlorenceEdgeError(f"--record {path}: name a video file ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    if not path.parent.is_dir():
        raise FlorenceEdgeError(f"--record {path}: folder {path.parent} does not exist")
    if path.is_dir() or (path.exists() and not force):
        raise FlorenceEdgeError(f"--record {path} already exists; pass --force to replace it")
    return path


class Recorder:
    """Frames (PIL images, any size: the first fixes it) at `fps` into `path`. The video is written
    beside the target and renamed over it by `close()`, so an interrupted run leaves a playable file
    or nothing, never a torn one in place of an old one. A write that fails (a full card) ends the
    recording, said once through `log`; the partial is removed and the loop goes on."""

    def __init__(self, path, fps: float = 10.0, force: bool = False, log=print):
        self.path = check_target(path, force)
        self.fps = Fraction(fps).limit_denominator(1000)
        fd, self._partial = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                             suffix=self.path.suffix)
        os.close(fd)
        self._container = _av().open(self._partial, "w")
        self._stream = None
        self._lock = threading.Lock()
        self.log = log
        self.frames = 0

    def write(self, image: Image.Image) -> None:
        with self._lock:
            if self._container is None:
                return
            if self._stream is None:
                self._start(image.size)
            if image.size != self._size:
                image = image.resize(self._size)
            frame = _av().VideoFrame.from_image(image)
            frame.pts = self.frames
            try:
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
            except OSError as exc:
                self._abandon(exc)
                return
            self.frames += 1

    def _abandon(self, exc: OSError) -> None:
        """The recording cannot go on: drop what there is of it (not a playable file) and say so once."""
        with contextlib.suppress(OSError):
            self._container.close()
        self._container = None
        Path(self._partial).unlink(missing_ok=True)
        self.log(f"--record {self.path}: cannot write ({exc.strerror or exc}): recording stopped after "
                 f"{self.frames} frames, nothing kept; the loop goes on")

    def _start(self, size: tuple[int, int]) -> None:
        self._size = (size[0] // 2 * 2, size[1] // 2 * 2)  # yuv420p needs even sides
        self._stream = self._container.add_stream("libx264", rate=self.fps)
        self._stream.width, self._stream.height = self._size
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = 1 / self.fps
        self._stream.options = {"preset": "veryfast", "crf": "23"}

    def close(self) -> None:
        """Finish the file and put it in place (nothing is written if no frame came)."""
        with self._lock:
            if self._container is None:
                return
            try:
                if self._stream is not None:
                    for packet in self._stream.encode():
                        self._container.mux(packet)
                self._container.close()
            except OSError as exc:
                self._abandon(exc)
                return
            self._container = None
            if self.frames:
                publish(self._partial, self.path)
            else:
                os.unlink(self._partial)
