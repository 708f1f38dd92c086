"""What every bad-input case asserts: the command ends with its documented exit code and one line
`florence-edge <command>: <problem>`, prints no traceback, dies of no signal, and leaves every file
that was there before byte-identical."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "shapes-1.png"


def cli(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """The real command in its own process, as a user runs it (a native crash cannot take pytest down)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edge.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def ends_cleanly(result: subprocess.CompletedProcess, code: int, message: str, command: str | None = None) -> None:
    """Exit `code`, no traceback, and (for an error) the last stderr line is the one-line message."""
    assert result.returncode >= 0, f"died of signal {-result.returncode}: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    if code:
        last = result.stderr.strip().splitlines()[-1]
        prefix = f"florence-edge {command}: " if command else "florence-edge"
        assert last.startswith(prefix) and message in last, last


def snapshot(*folders: Path) -> dict[str, str]:
    """sha256 of every file under `folders` (links not followed), by path."""
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
