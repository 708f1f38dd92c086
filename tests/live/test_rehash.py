"""The bundle hashed again during a run: a file rotted while `live` runs ends the run with exit 1 and
its reason (a service restarts), and the next start refuses the file by name; stopping mid-hash is
no damage."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from expect import ROOT, cli, ends_cleanly

from edge.live.rehash import Rehash


def _rot(path) -> None:
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(data)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_a_file_rotted_during_a_run_ends_it_and_the_next_start_refuses_it(demo_copy):
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "live", "-m", str(demo_copy), "--source", "scenes",
                             "-t", "CAPTION", "--rehash-hours", "0.0003"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "self-test passed" in line:
            break
    _rot(demo_copy / "encoder.tflite")
    _, rest = proc.communicate(timeout=120)
    said = [*lines, *rest.splitlines(keepends=True)]
    assert proc.returncode == 1, said
    assert said[-1].strip() == (f"florence-edge live: stopped: bundle file {demo_copy / 'encoder.tflite'} is damaged "
                                "(its sha256 is no longer the manifest's); a service starts again to its self-test")
    again = cli("live", "-m", demo_copy, "--source", "scenes", "-t", "CAPTION", "--frames", "1")
    ends_cleanly(again, 2, f"bundle file {demo_copy / 'encoder.tflite'} is damaged", "live")


def test_intact_files_pass_and_stopping_mid_hash_is_no_damage(tmp_path):
    data = os.urandom(3 << 20)
    (tmp_path / "graph.tflite").write_bytes(data)
    manifest = SimpleNamespace(root=tmp_path, raw={"files": {"graph.tflite": {
        "sha256": hashlib.sha256(data).hexdigest()}}})
    damaged = []
    passes = Rehash(manifest, 0.01, damaged.append, rate=1e9)
    passes.start()
    deadline = time.monotonic() + 10
    while passes.checked < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    passes.stop()
    slow = Rehash(manifest, 0.01, damaged.append, rate=1e6)  # 3 s a pass: stopped inside it
    slow.start()
    threading.Event().wait(0.5)
    slow.stop()
    slow.join(5)
    assert passes.checked >= 2 and not slow.is_alive() and slow.checked == 0 and damaged == []
