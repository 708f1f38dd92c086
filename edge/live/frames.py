"""What every frame source gives and is: `Frame` (a picture with its number and times), the `Source`
interface, `SourceLost`, and the `CameraSettings` a camera is asked for. The sources themselves live
in `edge.live.sources` (and `video`, `picamera`), which import this, never the other way round."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.errors import FlorenceEdgeError


@dataclass
class Frame:
    """`image` is what the model sees (HxWx3 RGB uint8); `display`, when a source has a larger picture
    for viewing (picamera2's main stream), is what viewers see, and results are in its pixels."""

    image: np.ndarray
    number: int  # the source's frame number; for a file, its index from 0
    time: float  # capture time, seconds since the epoch
    clock: float  # capture time on the monotonic clock, for latencies
    display: np.ndarray | None = None
    stream_time: float | None = None  # a file's own timestamp (s from its start); None: a camera's, `clock`

    @property
    def seconds(self) -> float:
        """The source's own time, what tracks and triggers count in: a file's timestamps (the same
        however fast it is processed), a camera's monotonic capture time."""
        return self.clock if self.stream_time is None else self.stream_time

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) results are given in: the displayed picture's. The model's `<loc_N>` bins
        are fractions of the view, and lores and main show the same view, so parsing against the
        main size maps results to main's pixels with no extra step."""
        picture = self.image if self.display is None else self.display
        return picture.shape[1], picture.shape[0]


class SourceLost(Exception):
    """A live source stopped delivering (unplugged camera, dropped stream); reopening may bring it back."""


class Source:
    """A source of frames. `read()` returns the next frame, None at the end (files), or raises
    `SourceLost`; `live` sources are cameras and streams (newest frame wins, may drop out and come
    back), others have an end; `fps` is a file's own frame rate (None: as fast as they come)."""

    name = "source"
    live = False
    fps: float | None = None
    skipped = 0  # frames that could not be decoded

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; idempotent."""

    def reopen(self) -> None:
        """After `SourceLost`: try to open again (raises `SourceLost` while it cannot)."""
        raise SourceLost(f"{self.name} cannot be reopened")

    def first_open(self) -> None:
        """Open for the first time: what is a passing loss later is bad input now (one line, exit 2)."""
        try:
            self._open()
        except SourceLost as exc:
            raise FlorenceEdgeError(str(exc)) from None


@dataclass(frozen=True)
class CameraSettings:
    """What a camera is asked for (None: its default): `main` (width, height) of the picture shown
    (picamera2's main stream, a V4L2 camera's only one), `lores` the picture picamera2 gives the
    model, `fps` frames per second, `password_file` a network camera's password (kept off the command
    line and out of config files)."""

    main: tuple[int, int] | None = None
    lores: tuple[int, int] | None = None
    fps: float | None = None
    password_file: str | None = None
