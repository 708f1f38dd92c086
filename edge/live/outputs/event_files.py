"""A folder of files kept per event (snapshots, clips), capped in size and age.

Each file is written beside its name under a hidden one and renamed into place, so a power cut
leaves the old state or the new, never a torn file; the oldest files go first when the folder
passes its size cap, and any older than its age cap go whatever the size. Partials a killed run left
(a power cut mid-write) are removed when the folder is next opened. A full card or a
failing write is said once and counted; the loop never waits for it (writers run on their own
threads).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path

from edge.errors import FlorenceEdgeError
from edge.files import publish

EVENT_ID = re.compile(r"^[0-9.]+-[0-9a-f]{6}$")  # `edge.live.events.tracks.new_id`: never a path
PARTIAL = re.compile(r"^\.[0-9.]+-[0-9a-f]{6}\.")  # what `write` names a file until it is whole


def checked_folder(path: str, what: str) -> Path:
    """The folder, made if missing and proven writable, or a one-line error."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".florence-edge-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise FlorenceEdgeError(f"{what} {path}: cannot write there ({exc.strerror})") from None
    return folder


class EventFiles:
    """`folder` holding `<event id><suffix>` files, at most `max_mb` and `max_days` old."""

    def __init__(self, folder: Path, max_mb: float, max_days: float, what: str, log=print):
        self.folder = folder
        self.max_bytes = max_mb * 1e6
        self.max_age = max_days * 86400
        self.what = what
        self.log = log
        self.counts = {"written": 0, "failed": 0, "removed": 0}
        self._failing = False
        self._lock = threading.Lock()
        self._remove_partials()

    def _remove_partials(self) -> None:
        """Hidden partials of a run that was killed mid-write: never published, never read; gone."""
        for entry in os.scandir(self.folder):
            if PARTIAL.match(entry.name) and entry.is_file():
                os.unlink(entry.path)

    def path(self, event_id: str, suffix: str) -> Path | None:
        """Where an event's file is, if `event_id` is one and the file exists."""
        if not EVENT_ID.match(event_id):
            return None
        path = self.folder / f"{event_id}{suffix}"
        return path if path.is_file() else None

    def write(self, event_id: str, suffix: str, fill) -> bool:
        """`fill(path)` writes a hidden partial file, which then takes the event's name; False when it failed."""
        partial = None
        try:
            fd, partial = tempfile.mkstemp(dir=self.folder, prefix=f".{event_id}.", suffix=suffix)
            os.close(fd)
            fill(partial)
            publish(partial, self.folder / f"{event_id}{suffix}")
        except OSError as exc:
            self._failed(exc)
            if partial is not None and os.path.exists(partial):
                os.unlink(partial)
            return False
        self.counts["written"] += 1
        if self._failing:
            self._failing = False
            self.log(f"{self.what}: writing to {self.folder} again")
        self.prune()
        return True

    def _failed(self, exc: OSError) -> None:
        self.counts["failed"] += 1
        if not self._failing:
            self._failing = True
            self.log(f"{self.what}: cannot write to {self.folder} ({exc.strerror}); the loop goes on without "
                     "them until it can")

    def prune(self) -> None:
        """Remove files past the age cap, then the oldest until the folder fits its size cap."""
        with self._lock:
            files = []
            for entry in os.scandir(self.folder):
                if entry.is_file() and not entry.name.startswith("."):
                    info = entry.stat()
                    files.append((info.st_mtime, info.st_size, entry.path))
            files.sort()
            total = sum(size for _, size, _ in files)
            now = time.time()
            for mtime, size, path in files:
                if total <= self.max_bytes and now - mtime <= self.max_age:
                    break
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                total -= size
                self.counts["removed"] += 1
