"""The config.txt snippets: one per camera module the issue names (and USB), every setting explained
by the comment above it (config.txt has no end-of-line comments), and each naming its own sensor."""

from __future__ import annotations

import re

import pytest

from firmware_configs import BOOT

SENSORS = {"imx219": "Camera Module v2", "imx708": "Camera Module 3", "imx477": "High Quality Camera",
           "imx500": "AI Camera"}
# The config.txt settings the snippets may use, from the Raspberry Pi documentation's config.txt page.
KNOWN = {"camera_auto_detect", "dtoverlay", "dtparam", "usb_max_current_enable"}


def settings(text: str) -> list[tuple[int, str]]:
    return [(i, line) for i, line in enumerate(text.splitlines()) if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", sorted(BOOT.glob("*.txt")), ids=lambda p: p.name)
def test_every_setting_has_its_reason_above_it(path):
    lines = path.read_text().splitlines()
    for index, line in settings(path.read_text()):
        if re.fullmatch(r"\[\w+\]", line):  # a conditional filter such as [pi5] or [all]
            continue
        assert "#" not in line, f"{path.name}: config.txt would read the comment as part of {line!r}"
        assert index and lines[index - 1].startswith("#") or lines[index - 1].startswith("["), (
            f"{path.name}: {line!r} has no comment above it")
        assert line.split("=")[0] in KNOWN, f"{path.name}: unknown setting {line!r}"


@pytest.mark.parametrize("sensor, module", SENSORS.items())
def test_each_camera_module_has_a_snippet_naming_its_sensor(sensor, module):
    text = (BOOT / f"{sensor}.txt").read_text()
    assert module in text.splitlines()[0]
    assert [line for _, line in settings(text) if line.startswith("dtoverlay=")] == [f"dtoverlay={sensor}"]
    assert "camera_auto_detect=0" in text


def test_usb_cameras_and_the_hardware_watchdog_have_snippets():
    assert "uvcvideo" in (BOOT / "usb.txt").read_text()
    assert "dtparam=watchdog=on" in (BOOT / "watchdog.txt").read_text()
