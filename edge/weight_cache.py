"""The packed-weight cache's own check: a CRC-32 of each cache file, sealed beside it once LiteRT has
written it, checked before LiteRT reads it again.

LiteRT trusts a cache file whose header is intact: bit rot past the header (or a write torn by a
power cut) ran the demo bundle to empty answers with exit 0. A cache without a seal (torn while
written, or written by an older florence-edge) or whose CRC differs is removed before LiteRT
opens the file, so it packs the weights again. The self-test probe (`edge.self_test`) catches
damage too, but only where it changes what the probe runs (one picture, greedy, the smallest
decoder signature): the seal covers every byte. A CRC-32 reads 2.8 GB/s here (base's 233 MB of
caches in under 0.1 s); the card reads the file at that load anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from pathlib import Path

_CHUNK = 8 << 20


def _seal_path(cache: Path) -> Path:
    return cache.with_name(f"{cache.name}.crc32")


def _crc(path: Path) -> str:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"{os.path.getsize(path)}:{crc:08x}"


@contextlib.contextmanager
def held(cache: Path):
    """The cache file to itself while it is checked, loaded and sealed (a service and a `check --run`
    starting together would otherwise each take the other's half-written file for a torn one)."""
    try:
        lock = open(cache.with_name(f"{cache.name}.lock"), "a")
    except OSError:  # a full card: go on unlocked, as before there was a lock
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def prepare(cache: Path) -> str | None:
    """Before LiteRT opens `cache`: remove it unless its seal matches; a note when it was damaged."""
    seal = _seal_path(cache)
    if not cache.exists():
        seal.unlink(missing_ok=True)
        return None
    try:
        sealed = seal.read_text().strip()
    except OSError:
        sealed = None
    if sealed == _crc(cache):
        return None
    drop(cache)
    return None if sealed is None else (f"the weight cache {cache} was damaged (its CRC-32 is not the one "
                                        "sealed with it): packing the weights again")


def seal(cache: Path) -> None:
    """After LiteRT wrote `cache`: its CRC-32 beside it, written whole (a full card: no seal, so it is
    packed again next time)."""
    if not cache.exists() or _seal_path(cache).exists():
        return
    partial = cache.with_name(f".{cache.name}.crc32.{os.getpid()}")
    try:
        with open(partial, "w") as f:
            f.write(_crc(cache))
            f.flush()
            os.fsync(f.fileno())
        partial.replace(_seal_path(cache))
    except OSError:
        partial.unlink(missing_ok=True)


def drop(cache: Path) -> None:
    """Remove a cache file and its seal (LiteRT packs the weights again at the next load)."""
    for path in (cache, _seal_path(cache)):
        path.unlink(missing_ok=True)
