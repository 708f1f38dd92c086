"""Writing a user's file whole: built beside the target under a hidden name, flushed to the card,
then renamed over it (a power cut leaves the old file or the new one, never a torn one)."""

from __future__ import annotations

import os
from pathlib import Path

CREDENTIALS = "${CREDENTIALS_DIRECTORY}"


def publish(partial: str | Path, target: str | Path, mode: int | None = None) -> None:
    """Give `partial` `mode`, by default the permissions a new file gets here (mkstemp makes it 0600),
    and rename it to `target`."""
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(partial, mode)
    fd = os.open(partial, os.O_RDONLY)
    try:  # without it, ext4 may commit the rename before the data: a cut then leaves an empty file
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, target)


def credential(path: str) -> str:
    """A secret's file: `${CREDENTIALS_DIRECTORY}/NAME` is where systemd hands a service its
    LoadCredential= files (what `service install` writes into a service's config)."""
    return path.replace(CREDENTIALS, os.environ.get("CREDENTIALS_DIRECTORY", CREDENTIALS))
