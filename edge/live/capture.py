"""The capture thread: reads a source at its own pace and keeps only the newest frame.

Frames that arrive while the model is busy replace the waiting one (counted as dropped), so the
model always starts on the freshest picture and nothing queues up. With `every_frame` (for
recordings) the thread waits for the model instead, and no frame is dropped. A live source that
stops delivering is reopened with growing pauses; each outage is logged once, with its length.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from edge.live.frames import Frame, Source, SourceLost

_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)  # s between attempts to reopen a lost camera


class Mailbox:
    """One slot: `put` replaces what waits there (a drop), `put_wait` waits for the slot to empty."""

    def __init__(self):
        self._ready = threading.Condition()
        self._item: Frame | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Frame) -> None:
        with self._ready:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._ready.notify_all()

    def put_wait(self, item: Frame, stop: threading.Event, timeout: float | None = None) -> bool:
        """Wait for the slot to empty, then fill it; False (nothing put) if `timeout` s passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while self._item is not None and not stop.is_set() and not self._closed:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                self._ready.wait(0.1)
            self._item = item
            self._ready.notify_all()
            return True

    def take(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, waiting for one; None once closed and empty (or after `timeout`)."""
        with self._ready:
            self._ready.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            self._ready.notify_all()
            return item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Capture(threading.Thread):
    """Reads `source` into `mailbox` until stopped or the source ends (then the mailbox closes).

    `on_frame(frame)` sees every captured frame first (the overlay and recorder draw on it), and
    `on_frame(None)` at each attempt to reopen a lost live source (viewers show "no signal").
    `log(line)` gets the outage lines. An unexpected error ends the thread and is kept in `error`,
    for the reader to raise."""

    def __init__(self, source: Source, mailbox: Mailbox, every_frame: bool = False, loop: bool = False,
                 on_frame: Callable[[Frame | None], None] | None = None, log: Callable[[str], None] = print):
        super().__init__(name="florence-edge-capture", daemon=True)
        self.source, self.mailbox = source, mailbox
        self.every_frame, self.loop = every_frame, loop
        self.on_frame = on_frame or (lambda frame: None)
        self.log = log
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.captured = 0
        self.outages: list[float] = []  # seconds each lasted
        self.signal = True
        self.heartbeat = time.monotonic()  # the last sign of progress, for the watchdog

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        try:
            self._read_all()
        except BaseException as exc:  # handed to the reader: a thread cannot raise into the main loop
            self.error = exc
        finally:
            self.mailbox.close()

    def _read_all(self) -> None:
        pace = _Pace(self.source.fps if not self.every_frame and not self.source.live else None)
        while not self.stop_event.is_set():
            try:
                frame = self.source.read()
                self.heartbeat = time.monotonic()
            except SourceLost as exc:
                frame = self._outage(str(exc))
                pace.restart()
            if frame is None:
                if self.stop_event.is_set() or not (self.loop and hasattr(self.source, "rewind")):
                    return
                self.source.rewind()
                pace.restart()
                continue
            frame = pace.deliver(frame, self.stop_event)
            self.captured += 1
            self.on_frame(frame)
            if self.every_frame:
                while not self.mailbox.put_wait(frame, self.stop_event, timeout=1.0):
                    self.heartbeat = time.monotonic()  # waiting for the model is progress too
            else:
                self.mailbox.put(frame)

    def _outage(self, reason: str) -> Frame | None:
        """Reopen a lost source with growing pauses until a frame comes again (returned), or the loop
        stops (None). Logged once when it starts and once when it ends, with its length."""
        self.signal = False
        start = time.monotonic()
        self.log(f"{reason}; retrying until it is back")
        attempt = 0
        while not self.stop_event.is_set():
            self.heartbeat = time.monotonic()
            self.on_frame(None)
            if self.stop_event.wait(_BACKOFF[min(attempt, len(_BACKOFF) - 1)]):
                return None
            attempt += 1
            try:
                self.source.reopen()
                frame = self.source.read()  # back only once it delivers again
            except SourceLost:
                continue
            if frame is None:
                return None
            self.outages.append(time.monotonic() - start)
            self.log(f"{self.source.name} is back after {self.outages[-1]:.1f} s")
            self.signal = True
            return frame
        return None


class _Pace:
    """Holds a file to its own frame rate, as a camera would deliver it (None: no pacing)."""

    def __init__(self, fps: float | None):
        self.period = 1 / fps if fps else None
        self.restart()

    def restart(self) -> None:
        self.start, self.count = time.monotonic(), 0

    def deliver(self, frame: Frame, stop: threading.Event) -> Frame:
        """`frame` at its turn, stamped then, as a camera stamps a frame when its sensor gives it: the
        time it waited after being read ahead is no part of its latency."""
        if self.period is None:
            return frame
        delay = self.start + self.count * self.period - time.monotonic()
        self.count += 1
        if delay > 0:
            stop.wait(delay)
        return dataclasses.replace(frame, time=time.time(), clock=time.monotonic())
