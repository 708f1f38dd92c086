"""The bundle's files hashed again every so often during a long run, in the background.

Bit rot keeps a file's modification time, so the verification remembered at load never sees it;
a graph is read from the card again whenever the kernel dropped its pages. The thread runs at the
lowest CPU priority and reads at most `RATE` bytes a second, so the loop never waits for it (base's
298 MB take about 15 s at that rate; a Pi 4's card reads about 40 MB/s). A file that no longer
matches is said once, and `on_damage` stops the run: a service then starts again to its
self-test, which refuses the bundle by name.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

RATE = 20e6  # bytes/s
_CHUNK = 1 << 20


def _lowest_priority() -> None:
    try:  # on Linux a thread's nice value is its own (the id is the thread's)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError:
        pass


class Rehash(threading.Thread):
    """Every `every` seconds, each of `manifest`'s files against its sha256; `on_damage(line)` on the first
    that differs. `checked` counts whole passes; `damaged` holds the line once one failed."""

    def __init__(self, manifest, every: float, on_damage, rate: float = RATE):
        super().__init__(name="florence-edge-rehash", daemon=True)
        self.manifest, self.every, self.on_damage, self.rate = manifest, every, on_damage, rate
        self.checked = 0
        self.damaged: str | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        _lowest_priority()
        while not self._stopping.wait(self.every):
            for name, entry in self.manifest.raw["files"].items():
                digest = self._hash(self.manifest.root / name)
                if self._stopping.is_set():
                    return
                if digest != entry["sha256"]:
                    self.damaged = (f"bundle file {self.manifest.root / name} is damaged (its sha256 is no longer "
                                    "the manifest's)")
                    self.on_damage(self.damaged)
                    return
            self.checked += 1

    def _hash(self, path) -> str | None:
        digest = hashlib.sha256()
        start = time.monotonic()
        read = 0
        try:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    read += len(chunk)
                    ahead = read / self.rate - (time.monotonic() - start)
                    if ahead > 0 and self._stopping.wait(ahead):
                        return None
        except OSError:
            return None  # gone or unreadable: as damaged as a wrong byte
        return digest.hexdigest()

    def stop(self) -> None:
        self._stopping.set()
