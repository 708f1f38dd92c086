"""The live command: a missing or unopenable source, bad tasks, options and --record targets are one
line, exit 2, with nothing written and no camera left open."""

from __future__ import annotations

import pytest
from expect import cli, ends_cleanly


@pytest.mark.parametrize("args, message", [
    (["--source", "nowhere.mp4", "-t", "OD"], "source not found: nowhere.mp4"),
    (["--source", "/dev/video99", "-t", "OD"], "cannot open /dev/video99"),
    (["--source", "scenes", "-t", "NOPE"], "unknown task 'NOPE'"),
    (["--source", "scenes", "-t", "CAPTION_TO_PHRASE_GROUNDING"], "needs text input"),
    (["--source", "scenes", "-t", "OD", "--frames", "0"], "frames must be a whole number of at least 1"),
    (["--source", "scenes", "-t", "OD", "--change-threshold", "3"], "expects a number from 0 to 1"),
    (["--source", "scenes", "-t", "OD", "--record", "out.txt"], "--record out.txt: name a video file"),
    (["--source", "scenes", "-t", "OD", "--record", "notes.mp4"], "already exists; pass --force"),
])
def test_bad_live_input_is_one_line(demo_int8_bundle, user_files, args, message):
    (user_files / "notes.mp4").write_text("the user's\n")
    result = cli("live", "-m", demo_int8_bundle[0], *args, cwd=user_files)
    ends_cleanly(result, 2, message, "live")
    assert result.stdout == ""
    assert (user_files / "notes.mp4").read_text() == "the user's\n"
