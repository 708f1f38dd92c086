"""Bundle files checked against the manifest's sha256 before any native library parses them.

A graph damaged in place (bit rot on an SD card, a bad copy) kept its size and either crashed
LiteRT's loader (SIGSEGV, taking the host application with it) or ran with wrong numbers. The
hash catches both. Hashing a base bundle costs a fraction of a second to seconds on a board, so
a file once verified is remembered by device, inode, size and modification time in
`verified.json` in the cache folder: a later load only stats it, and any change to the file
(a new mtime) has it hashed again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge.errors import FlorenceEdgeError
from edge.manifest import Manifest, sha256_of

RECORD = "verified.json"
_KEEP = 256  # files remembered; the oldest are forgotten (and hashed again if they come back)


def _identity(path: Path) -> str:
    st = path.stat()
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _read(record: Path | None) -> dict:
    try:
        data = json.loads(record.read_text()) if record else {}
    except (OSError, ValueError):  # none yet, or a torn write: verify again
        return {}
    return data if isinstance(data, dict) else {}


def _write(record: Path, entries: dict) -> None:
    partial = record.with_name(f".{record.name}.{os.getpid()}")
    try:
        with open(partial, "w") as f:
            f.write(json.dumps(entries))
            f.flush()
            os.fsync(f.fileno())
        partial.replace(record)
    except OSError:  # a full or read-only card: verify again next time
        partial.unlink(missing_ok=True)


def verify_bundle(manifest: Manifest, cache: Path | None, remembered: bool = True) -> None:
    """Raise a one-line `FlorenceEdgeError` naming the first file whose sha256 differs from the manifest.

    `cache`: the folder holding the record of verified files (None: hash every file every time);
    `remembered`: False hashes every file even if recorded (bit rot keeps the mtime), then records them.
    """
    record = cache / RECORD if cache else None
    recorded = _read(record)
    known = recorded if remembered else {}
    fresh = dict(recorded)
    for name, entry in manifest.raw["files"].items():
        path = manifest.root / name
        identity = _identity(path)
        if known.get(identity) == entry["sha256"]:
            continue
        if sha256_of(path) != entry["sha256"]:
            raise FlorenceEdgeError(f"bundle file {path} is damaged (its sha256 is not the manifest's): "
                                    "copy the bundle again or convert it again")
        fresh[identity] = entry["sha256"]
    if record and fresh != recorded:
        _write(record, dict(list(fresh.items())[-_KEEP:]))
