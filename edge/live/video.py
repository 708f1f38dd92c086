"""Video files, V4L2/USB cameras and RTSP/HTTP streams through PyAV (FFmpeg inside).

PyAV is the one library for all three: it opens files of every common container and codec,
V4L2 devices (`format="v4l2"`) and network streams, ships FFmpeg in its wheels for x86_64 and
aarch64 (no system FFmpeg or OpenCV needed on a Pi), and gives frames as numpy arrays. It is
the `camera` extra: `pip install 'florence-edge[camera]'`.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from edge.errors import FlorenceEdgeError
from edge.files import credential
from edge.live.frames import CameraSettings, Frame, Source, SourceLost

# (open, read) timeouts in seconds for devices and streams: a camera that stops answering is lost,
# not waited on forever.
_TIMEOUTS = (10.0, 5.0)
_STREAM_OPTIONS = {"rtsp_transport": "tcp"}  # UDP drops packets on Wi-Fi; TCP is what cameras also offer


def _av():
    try:
        import av
    except ImportError:
        raise FlorenceEdgeError("video files, USB cameras and streams need PyAV: "
                                "pip install 'florence-edge[camera]'") from None
    return av


class VideoSource(Source):
    def __init__(self, spec: str, device: bool = False, stream: bool = False, camera: CameraSettings | None = None):
        self._camera = camera or CameraSettings()
        self._url = _with_password(spec, self._camera.password_file) if stream else spec
        self.name = _without_password(self._url)  # what logs, the journal and the web view show
        self.live = device or stream
        self._device, self._stream = device, stream
        self._container = None
        self._number = 0  # the next frame's number
        self._first = None  # the first frame's place in the file, by its timestamp
        self._base = 0  # numbers already used by earlier passes (--loop)
        self._start = None  # the first frame's timestamp in this pass, minus the seconds of earlier passes
        self._offset = 0.0  # seconds played by earlier passes (--loop)
        self.first_open()

    def _open(self) -> None:
        av = _av()
        options = dict(_STREAM_OPTIONS) if self._stream else self._device_options()
        try:
            self._container = av.open(self._url, format="v4l2" if self._device else None, options=options,
                                      timeout=_TIMEOUTS if self.live else None)
        except (av.FFmpegError, OSError) as exc:
            raise SourceLost(f"cannot open {self.name}: {self._reason(exc)}") from None
        streams = self._container.streams.video
        if not streams:
            self.close()
            raise SourceLost(f"{self.name} has no video stream")
        self._video = streams[0]
        self._video.thread_type = "AUTO"  # decode on several cores where the codec allows
        rate = self._video.average_rate or self._video.guessed_rate
        self.fps = None if self.live or not rate else float(rate)
        self._frames = self._decode()

    def _device_options(self) -> dict:
        """What FFmpeg's v4l2 input asks the camera for (it takes the nearest size the camera has)."""
        if not self._device:
            return {}
        options = {}
        if self._camera.main:
            options["video_size"] = "{}x{}".format(*self._camera.main)
        if self._camera.fps:
            options["framerate"] = f"{self._camera.fps:g}"
        return options

    def _decode(self):
        """Decoded frames in order; a packet that does not decode is skipped and counted."""
        av = _av()
        for packet in self._container.demux(self._video):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                self.skipped += 1

    def read(self) -> Frame | None:
        av = _av()
        try:
            frame = next(self._frames, None)
        except (av.FFmpegError, OSError) as exc:
            if self.live:
                raise SourceLost(f"{self.name}: {self._reason(exc)}") from None
            self.skipped += 1  # a damaged file: what could be read was read
            return None
        if frame is None:
            if self.live:
                raise SourceLost(f"{self.name} ended")
            return None
        try:
            image = frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, ValueError) as exc:
            raise FlorenceEdgeError(f"{self.name}: cannot convert its {frame.format.name} frames to RGB "
                                    f"({self._reason(exc)})") from None
        number = self._numbered(frame)
        # A file's frames carry its own time; a camera's and a stream's are their capture times.
        stream_time = None if self.live else self._seconds(frame, number)
        return Frame(image, number, time.time(), time.monotonic(), stream_time=stream_time)

    def _seconds(self, frame, number: int) -> float:
        """A file frame's time from the file's start (its timestamp; its number at the file's rate
        where it has none), continuing across `--loop` passes."""
        if frame.pts is None or frame.time_base is None:
            return number / (self.fps or 10.0)
        at = float(frame.pts * frame.time_base)
        if self._start is None:
            self._start = at - self._offset
        return at - self._start

    def _numbered(self, frame) -> int:
        """A file's frames by their place in it (from their timestamps, so frames a damaged stretch
        lost leave a gap, counted as skipped); a camera's in the order they come."""
        index = self._number
        if self.fps and frame.pts is not None:
            at = round(float(frame.pts * frame.time_base) * self.fps)
            self._first = at if self._first is None else self._first
            index = self._base + at - self._first
            self.skipped += max(0, index - self._number)
        self._number = index + 1
        return index

    def rewind(self) -> None:
        """Back to the first frame (`--loop`); frame numbers keep counting."""
        self._container.seek(0)
        self._frames = self._decode()
        self._base, self._first = self._number, None
        self._offset = self._number / (self.fps or 10.0)
        self._start = None

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _reason(self, exc: BaseException) -> str:
        said = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return said.replace(self._url, self.name)


def _with_password(url: str, password_file: str | None) -> str:
    """`url` with the password read from `password_file` (its first line), percent-encoded."""
    if not password_file:
        return url
    parts = urlsplit(url)
    if not parts.username:
        raise FlorenceEdgeError(f"--source-password-file needs the user in the URL: {parts.scheme}://USER@{parts.netloc}"
                                f"{parts.path}")
    try:
        password = Path(credential(password_file)).read_text().splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        raise FlorenceEdgeError(f"cannot read --source-password-file {password_file}: "
                                f"{getattr(exc, 'strerror', None) or 'it is empty or not text'}") from None
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{quote(password, safe='')}@{host}"))


def _without_password(spec: str) -> str:
    """A camera's address as shown: `rtsp://admin:***@cam/stream` (IP cameras take their password only
    in the URL; it must not reach logs, the journal or a web page)."""
    parts = urlsplit(spec)
    if "://" not in spec or parts.password is None:
        return spec
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
