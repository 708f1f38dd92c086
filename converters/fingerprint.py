"""What a bundle was converted from: the checkpoint's files, the converter's code and the options.

Recorded in the manifest, so `convert --reuse` can leave a bundle alone when converting again
would give the same one (`make demo` run twice converts once).
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import converters
import edge
from edge.manifest import MANIFEST_NAME

_CHUNK = 1 << 20


def _file_digest(path: Path, digest) -> None:
    digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)


def _tree_digest(folder: Path, pattern: str, digest) -> None:
    for path in sorted(p for p in folder.rglob(pattern) if p.is_file()):
        _file_digest(path, digest)


def fingerprint(src: str, options: dict, calibration_images: str | None) -> str | None:
    """sha256 over a local checkpoint's files, the calibration pictures, the converter's and the
    runtime's Python sources, the installed conversion libraries and `options`; None for a hub id (its
    files are resolved while loading, so a local fingerprint cannot say they are unchanged)."""
    checkpoint = Path(src).expanduser()
    if not checkpoint.is_dir():
        return None
    digest = hashlib.sha256()
    _tree_digest(checkpoint, "*", digest)
    if calibration_images:
        _tree_digest(Path(calibration_images).expanduser(), "*", digest)
    for package in (converters, edge):
        _tree_digest(Path(package.__file__).parent, "*.py", digest)
    versions = {}
    for name in ("torch", "transformers", "litert-torch", "ai-edge-quantizer", "ai-edge-litert"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    digest.update(json.dumps({"options": options, "versions": versions}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def recorded(out: Path) -> str | None:
    """The fingerprint an existing bundle in `out` was converted with; None without one."""
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text())
        return manifest["conversion"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
