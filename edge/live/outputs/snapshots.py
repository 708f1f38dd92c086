"""`--snapshots DIR`: the best frame of each tracked object and of each trigger firing, as JPEG.

"Best" is the frame with the highest score among the event's new/update (or on) events; for each,
`<id>.jpg` has the overlay drawn and `<id>-clean.jpg` is the picture alone. The loop hands over a
reference to the frame; encoding and writing happen on this output's thread, and a frame that
finds the queue full is dropped and counted.
"""

from __future__ import annotations

import queue
import threading
from functools import partial

from PIL import Image

from edge.live.outputs.event_files import EventFiles

QUEUE = 16  # frames waiting to be written
STARTS = ("new", "update", "on")
ENDS = ("end", "off")
SUFFIXES = {"snapshot.jpg": ".jpg", "snapshot-clean.jpg": "-clean.jpg"}


class Snapshots:
    name = "snapshots"

    def __init__(self, files: EventFiles, render, quality: int = 85):
        self.files = files
        self.render = render  # picture -> PIL image with the overlay
        self.quality = quality
        self.dropped = 0
        self._best: dict[str, float] = {}  # id -> score of the frame kept so far, while the event lasts
        self._queue: queue.Queue = queue.Queue(QUEUE)
        self._thread = threading.Thread(target=self._write, name="florence-edge-snapshots", daemon=True)

    @property
    def counts(self) -> dict:
        return {**self.files.counts, "dropped": self.dropped}

    def annotate(self, event: dict) -> None:
        event["snapshot"] = f"/events/{event['id']}/snapshot.jpg"

    def file(self, event_id: str, name: str):
        return self.files.path(event_id, SUFFIXES[name]) if name in SUFFIXES else None

    def start(self) -> None:
        self._thread.start()

    def on_event(self, event: dict, picture) -> None:
        event_id, score = event["id"], event["score"] or 0.0
        if event["event"] in ENDS:
            self._best.pop(event_id, None)
            return
        if picture is None or event["event"] not in STARTS or score <= self._best.get(event_id, -1.0):
            return
        self._best[event_id] = score
        try:
            self._queue.put_nowait((event_id, picture))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            event_id, picture = item
            for suffix, image in ((".jpg", self.render(picture)), ("-clean.jpg", Image.fromarray(picture))):
                self.files.write(event_id, suffix, partial(image.save, format="JPEG", quality=self.quality))
