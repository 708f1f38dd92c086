"""Throttling on a Raspberry Pi: the firmware's flags (a stand-in file of the sysfs file's form: no
Pi here) in `doctor`, in a live run's stats with the inferred rate either way, and in the status line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from expect import ROOT, cli, ends_cleanly

from edge.live import throttle
from edge.live.throttle import ThrottleWatch, describe


def test_the_flags_in_words():
    assert describe(0x50005) == {"now": ["under-voltage", "throttled"], "since_boot": ["under-voltage", "throttled"]}
    assert describe(0x80000) == {"now": [], "since_boot": ["soft temperature limit"]}


def test_doctor_says_what_the_firmware_says(tmp_path, monkeypatch):
    flags = tmp_path / "get_throttled"
    flags.write_text("50005\n")
    monkeypatch.setenv("FLORENCE_EDGE_THROTTLED", str(flags))
    result = cli("doctor")
    ends_cleanly(result, 0, "")
    said = "throttling:   under-voltage, throttled now; since boot: under-voltage, throttled (a 5 V 3 A supply"
    assert said in result.stdout
    monkeypatch.setenv("FLORENCE_EDGE_THROTTLED", str(tmp_path / "none"))
    assert "throttling:   not reported" in cli("doctor").stdout


def test_the_watch_counts_frames_and_seconds_apart_and_says_what_it_cost(monkeypatch):
    monkeypatch.setattr(throttle, "PERIOD", 0.0)
    flags = iter([0, 0, 0x50005, 0x50005, 0x50005])
    watch = ThrottleWatch(lambda: next(flags, 0x50005))
    for inferred in range(1, 5):
        time.sleep(0.05)
        watch.tick(inferred)
    summary = watch.summary()
    assert summary["now"] == ["under-voltage", "throttled"] and 0.05 < summary["seconds_throttled"] < 0.5
    assert summary["inferred_per_s_throttled"] > 0 and summary["inferred_per_s_unthrottled"] > 0
    assert watch.status().startswith(" · throttled now: under-voltage, throttled (")
    assert ThrottleWatch(lambda: None).summary() is None and ThrottleWatch(lambda: 0).status() == ""


def test_a_live_run_reports_throttling_when_it_starts(demo_int8_bundle, tmp_path):
    flags = tmp_path / "get_throttled"
    flags.write_text("0")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "live", "-m", str(demo_int8_bundle[0]),
                             "--source", "scenes", "-t", "CAPTION", "--json", "--frames", "80"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "FLORENCE_EDGE_THROTTLED": str(flags)})
    threading.Timer(3.0, lambda: flags.write_text("50005")).start()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    stats = json.loads(err.strip().splitlines()[-1].partition(": ")[2])
    assert stats["throttled"]["now"] == ["under-voltage", "throttled"], stats
    assert stats["throttled"]["seconds_throttled"] > 0 and stats["throttled"]["inferred_per_s_throttled"] > 0
