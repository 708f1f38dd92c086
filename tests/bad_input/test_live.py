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
    # Zones and triggers are checked before the camera opens (the source here does not exist).
    (["--source", "nowhere.mp4", "-t", "OD", "--trigger", "red="], "the text to look for is empty"),
    (["--source", "nowhere.mp4", "-t", "OD", "--trigger", "red"], "--trigger expects NAME=TEXT"),
    (["--source", "nowhere.mp4", "-t", "OD", "--trigger", "red=" + "a red circle " * 30], "text input too long"),
    (["--source", "nowhere.mp4", "-t", "OD", "--zone", "door=0,0 1,1"], "needs at least three points"),
    (["--source", "nowhere.mp4", "-t", "OD", "--zone", "door=0,0 1.5,0 1,1"], "outside 0-1"),
    (["--source", "nowhere.mp4", "-t", "OD", "--zone", "door=0,0 1,1 1,0 0,1"], "crosses itself"),
    (["--source", "nowhere.mp4", "-t", "OD", "--zone", "a=0,0 1,0 1,1", "--zone", "a=0,0 1,0 0,1"],
     "the name 'a' is used twice"),
    (["--source", "nowhere.mp4", "-t", "OD", "--trigger", "t=a cat", "--trigger", "t=a dog"],
     "the name 't' is used twice"),
    # So are the outputs' settings.
    (["--source", "nowhere.mp4", "-t", "OD", "--mqtt", "http://broker"], "use mqtt://[USER@]HOST[:PORT]"),
    (["--source", "nowhere.mp4", "-t", "OD", "--mqtt", "mqtt://"], "name the broker"),
    (["--source", "nowhere.mp4", "-t", "OD", "--mqtt", "mqtt://u:secret@broker"], "a password does not go in"),
    (["--source", "nowhere.mp4", "-t", "OD", "--mqtt", "mqtt://broker:99999"], "bad port"),
    (["--source", "nowhere.mp4", "-t", "OD", "--mqtt", "mqtts://broker", "--mqtt-ca-file", "no-ca.pem"],
     "mqtt ca_file no-ca.pem: No such file"),
    (["--source", "nowhere.mp4", "-t", "OD", "--mqtt", "mqtt://u@broker", "--mqtt-password-file", "none"],
     "mqtt password_file none: No such file"),
    (["--source", "nowhere.mp4", "-t", "OD", "--webhook", "ftp://host/x"], "an http:// or https:// address"),
    (["--source", "nowhere.mp4", "-t", "OD", "--webhook", "http://no-such-host.invalid/hook"],
     "the host 'no-such-host.invalid' does not resolve"),
    (["--source", "nowhere.mp4", "-t", "OD", "--snapshots", "notes.mp4/x"], "snapshots notes.mp4/x: cannot write"),
    (["--source", "nowhere.mp4", "-t", "OD", "--clips", "notes.mp4"], "clips notes.mp4: cannot write there"),
    (["--source", "nowhere.mp4", "-t", "OD", "--clip-after", "-1"], "expects a number from 0 to 60"),
])
def test_bad_live_input_is_one_line(demo_int8_bundle, user_files, args, message):
    (user_files / "notes.mp4").write_text("the user's\n")
    result = cli("live", "-m", demo_int8_bundle[0], *args, cwd=user_files)
    ends_cleanly(result, 2, message, "live")
    assert result.stdout == ""
    assert (user_files / "notes.mp4").read_text() == "the user's\n"


def test_a_trigger_in_an_unknown_zone_in_a_config_file(demo_int8_bundle, user_files):
    config = user_files / "events.toml"
    config.write_text('[[zones]]\nname = "door"\npoints = [[0, 0], [1, 0], [1, 1]]\n\n'
                      '[[triggers]]\nname = "parcel"\ntext = "a red square"\nzone = "porch"\n')
    result = cli("live", "-m", demo_int8_bundle[0], "--source", "nowhere.mp4", "-t", "OD", "--config", config,
                 cwd=user_files)
    ends_cleanly(result, 2, "triggers #1 'parcel': unknown zone 'porch' (zones: door)", "live")
