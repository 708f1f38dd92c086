"""What the web view hands to its viewers: the newest frame as JPEG, and a stream of events.

The loop only ever stores a reference and notifies: it never waits for a viewer. A frame is
JPEG-encoded on the first request for it (once per variant, clean or with the overlay, however
many viewers there are; not at all when nobody watches). A viewer that reads slowly simply
gets the newest frame when it asks again; its events wait in a bounded queue whose oldest
entries are dropped when it falls behind.
"""

from __future__ import annotations

import io
import threading
from collections import deque

from PIL import Image

JPEG_QUALITY = 80
EVENT_BACKLOG = 512  # events a viewer may fall behind by before the oldest are dropped


class FrameHub:
    """The newest frame, and its JPEGs made on demand. `render(picture)` draws the overlay."""

    def __init__(self, render, quality: int = JPEG_QUALITY):
        self._render = render
        self.quality = quality
        self._changed = threading.Condition()
        self._encoding = threading.Lock()
        self._picture = None  # the newest frame's picture (array or None: no signal), and its number
        self.sequence = 0
        self._jpegs: dict[bool, bytes] = {}
        self.encoded = 0  # JPEGs made, for the figures

    def publish(self, picture) -> None:
        with self._changed:
            self._picture = picture
            self.sequence += 1
            self._jpegs = {}
            self._changed.notify_all()

    def jpeg(self, overlay: bool) -> tuple[int, bytes | None]:
        """(sequence, JPEG of the newest frame), encoding it if nobody has yet; (0, None) before any frame."""
        with self._encoding:  # viewers asking at once: one encodes, the others take its JPEG
            with self._changed:
                sequence, picture, made = self.sequence, self._picture, self._jpegs.get(overlay)
            if sequence == 0:
                return 0, None
            if made is None:
                made = _encode(self._render(picture) if overlay or picture is None else Image.fromarray(picture),
                               self.quality)
                with self._changed:
                    if self.sequence == sequence:
                        self._jpegs[overlay] = made
                    self.encoded += 1
        return sequence, made

    def wait_newer(self, sequence: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.sequence != sequence, timeout)


def _encode(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


class EventHub:
    """Server-sent events to every subscriber, each with its own bounded backlog."""

    def __init__(self):
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []

    def publish(self, kind: str, data: str) -> None:
        with self._lock:
            for subscriber in self._subscribers:
                subscriber.put(kind, data)

    def subscribe(self) -> _Subscriber:
        subscriber = _Subscriber()
        with self._lock:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._subscribers)


class _Subscriber:
    def __init__(self):
        self._ready = threading.Condition()
        self._queue: deque[tuple[str, str]] = deque(maxlen=EVENT_BACKLOG)
        self.dropped = 0

    def put(self, kind: str, data: str) -> None:
        with self._ready:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append((kind, data))
            self._ready.notify()

    def take(self, timeout: float) -> list[tuple[str, str]]:
        """Everything waiting (possibly nothing after `timeout`)."""
        with self._ready:
            self._ready.wait_for(lambda: bool(self._queue), timeout)
            items = list(self._queue)
            self._queue.clear()
            return items
