"""Signals: the commands end quietly when interrupted (Ctrl-C) or when their reader goes away (`| head`)."""

import signal
import subprocess
import sys
import time

from PIL import Image


def _start(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "edge.cli", *args], stderr=subprocess.PIPE, text=True, **kw)


def test_ctrl_c_during_a_conversion_exits_130_and_leaves_nothing(tiny_checkpoint, tmp_path):
    out = tmp_path / "out" / "bundle"
    proc = _start(["convert", str(tiny_checkpoint), "-o", str(out)])
    seen = ""
    while "convert vision graph" not in seen:  # interrupt inside a stage, not before it
        line = proc.stderr.readline()
        assert line, f"convert ended early: {seen}"
        seen += line
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    err = seen + proc.stderr.read()
    assert proc.wait(timeout=120) == 130
    assert "Traceback" not in err and err.rstrip().endswith("florence-edge convert: interrupted")
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_a_closed_pipe_ends_run_quietly(fp32_bundle, tmp_path):
    images = []
    for i in range(3):
        images += ["-i", str(tmp_path / f"{i}.png")]
        Image.new("RGB", (64, 48), (40 * i, 90, 30)).save(tmp_path / f"{i}.png")
    proc = _start(["run", "-m", str(fp32_bundle[0]), *images, "-t", "OD", "--json", "--max-new-tokens", "8"],
                  stdout=subprocess.PIPE)
    proc.stdout.close()  # `| head -0`: the reader is gone before the first line
    err = proc.stderr.read()
    assert (proc.wait(timeout=120), err) == (141, "")


def test_ctrl_c_during_run_exits_130_in_one_line_and_leaves_no_partial_drawing(demo_int8_bundle, tmp_path):
    images = []
    for i in range(40):
        Image.new("RGB", (64, 48), (6 * i, 90, 30)).save(tmp_path / f"{i}.png")
        images += ["-i", str(tmp_path / f"{i}.png")]
    proc = _start(["run", "-m", str(demo_int8_bundle[0]), *images, "-t", "OD", "--json",
                   "--draw", str(tmp_path / "drawn-%d.jpg")], stdout=subprocess.PIPE)
    assert proc.stdout.readline().startswith("{")  # working: the first image is done
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "florence-edge run: interrupted"
    assert not list(tmp_path.glob(".*partial*"))
    for drawn in tmp_path.glob("drawn-*.jpg"):
        Image.open(drawn).verify()  # every drawing there is whole
