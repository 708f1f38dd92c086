"""`doctor`: the machine's facts, a bundle's fit, and the profile it suggests for a board."""

from __future__ import annotations

import json

import pytest
from expect import cli, ends_cleanly

from edge.live import doctor


@pytest.mark.parametrize("model, ram_mb, profile", [
    ("Raspberry Pi 5 Model B Rev 1.0", 8064, "pi5"),
    ("Raspberry Pi 4 Model B Rev 1.4", 3796, "pi4"),
    ("Raspberry Pi 4 Model B Rev 1.1", 906, "pi3"),  # the 1 GB Pi 4: pi3's limits fit it
    ("Raspberry Pi 400 Rev 1.0", 3794, "pi4"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", 906, "pi3"),
    ("Raspberry Pi Zero 2 W Rev 1.0", 426, "zero2w"),
    ("Raspberry Pi Compute Module 4 Rev 1.0", 1848, "cm4"),
    ("Raspberry Pi Compute Module 5 Rev 1.0", 3960, "cm5"),
])
def test_a_raspberry_pi_gets_its_profile(model, ram_mb, profile):
    assert doctor.suggest_profile(model, ram_mb)[0] == profile


def test_other_boards_get_the_generic_profile_or_none(monkeypatch):
    monkeypatch.setattr(doctor.cpu, "machine", lambda: "aarch64")
    assert doctor.suggest_profile("Radxa ROCK 5B", 8000)[0] == "generic-aarch64"
    monkeypatch.setattr(doctor.cpu, "machine", lambda: "x86_64")
    assert doctor.suggest_profile("QEMU Standard PC", 8000)[0] is None


def test_the_report_says_what_the_issue_asks(demo_int8_bundle):
    result = cli("doctor", "-m", demo_int8_bundle[0], "--json")
    ends_cleanly(result, 0, "")
    report = json.loads(result.stdout)
    assert report["board"] and report["cpu"] and report["cpus"] >= 1
    assert set(report["cpu_features"]) == set(doctor._FEATURES.get(doctor.cpu.machine(), {}))
    assert report["memory_mb"]["total"] > report["memory_mb"]["available"] > 0
    assert isinstance(report["cameras"], list)
    assert report["runtime"]["package"].startswith("ai-edge-litert ")
    assert report["weight_cache"]["free_mb"] > 0
    fit = report["bundle"]
    assert fit["fits"] is True and fit["need_mb"] > 0 and "needs about" in fit["why"]
    text = cli("doctor", "-m", demo_int8_bundle[0])
    ends_cleanly(text, 0, "")
    for label in ("board:", "cpu features:", "memory:", "cameras:", "runtime:", "weight cache:", "bundle:",
                  "profile:"):
        assert label in text.stdout


def test_a_bundle_that_does_not_fit_is_said_so(demo_copy):
    manifest = json.loads((demo_copy / "manifest.json").read_text())
    manifest["measured"]["peak_rss_mb"] = {"compiled": 10_000_000.0, "interpreter": 10_000_000.0}
    (demo_copy / "manifest.json").write_text(json.dumps(manifest))
    fit = doctor.bundle_fit(str(demo_copy))
    assert fit["fits"] is False and "10000000 MB" in fit["why"]


def test_a_damaged_bundle_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text("{")
    ends_cleanly(cli("doctor", "-m", tmp_path), 2, "manifest", "doctor")


def test_an_int4_bundle_on_the_interpreter_path_does_not_fit(demo_int4_bundle, monkeypatch):
    monkeypatch.setenv("FLORENCE_EDGE_RUNTIME", "interpreter")
    fit = doctor.bundle_fit(str(demo_int4_bundle[0]))
    assert fit["fits"] is False and "int4 weights need the compiled runtime" in fit["why"]
    monkeypatch.delenv("FLORENCE_EDGE_RUNTIME")
    assert doctor.bundle_fit(str(demo_int4_bundle[0]))["fits"] is True
