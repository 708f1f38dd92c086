"""A wheel built from a checkout that never ran `make phone` carries the phone page and its
LiteRT.js (fetched by setup.py through `make phone`), every file `/app/` serves."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from expect import ROOT

from edge.live.phone_app import PAGE_FILES, VENDOR


def test_the_wheel_carries_the_phone_page(tmp_path):
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    checkout = tmp_path / "checkout"
    for name in filter(None, tracked.decode().split("\0")):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, checkout / name)
    assert not (checkout / "edge/phone/vendor").exists()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                           str(tmp_path / "dist"), str(checkout)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"edge/phone/{name}" for name in PAGE_FILES} <= names
    assert {f"edge/phone/vendor/{name}" for name in VENDOR} <= names
