"""Board profiles, Raspberry Pi boot snippets and systemd units, shipped with the package so that
`florence-edge live --profile NAME` and `florence-edge service install` find them once installed."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
BOARDS = FOLDER / "boards"
BOOT = FOLDER / "boot"
SYSTEMD = FOLDER / "systemd"
