"""Text triggers: the on/off state machine, the category check, and one-line errors for bad settings."""

from __future__ import annotations

import os

import pytest

from edge.errors import FlorenceEdgeError
from edge.live.events.settings import triggers_from, zones_from
from edge.live.events.triggers import Finding, Trigger, TriggerState, agrees


def run(state, found_by_second, reused=()):
    """Feed one inferred (or reused) frame a second; returns (second, turn) pairs."""
    out = []
    for second, found in enumerate(found_by_second):
        finding = None if second in reused else Finding(found, (0, 0, 1, 1) if found else None, 0.9 if found else 0)
        turned = state.observe(finding, float(second))
        if turned:
            out.append((second, turned))
    return out


def test_on_after_frames_in_a_row_off_after_clear_after():
    state = TriggerState(Trigger("t", "a cat", frames=3, clear_after=2, cooldown=0))
    assert run(state, [1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0]) == [(5, "on"), (9, "off")]


def test_reused_frames_keep_the_state_but_do_not_count_toward_on():
    state = TriggerState(Trigger("t", "a cat", frames=2, clear_after=1))
    assert run(state, [1, 1, 1, 1, 1], reused={1, 2, 3}) == [(4, "on")]
    state = TriggerState(Trigger("t", "a cat", frames=1, clear_after=0.5))
    assert run(state, [1, 0, 0, 0, 0], reused={1, 2, 3}) == [(0, "on"), (4, "off")]  # still seen while reused


def test_cooldown_stops_flapping():
    state = TriggerState(Trigger("t", "a cat", frames=1, clear_after=0, cooldown=5))
    assert run(state, [1, 0, 1, 0, 1, 0, 1, 1]) == [(0, "on"), (1, "off"), (6, "on")]


def test_the_check_wants_every_word_of_the_category_in_the_phrase():
    assert agrees("red circle", "a red circle") and agrees("umbrellas", "a person with a red umbrella")
    assert not agrees("blue circle", "a red circle") and not agrees("", "a red circle")
    assert not agrees("red square", "a red circle")


@pytest.fixture(scope="module")
def demo(demo_int8_bundle):
    from edge.model import Florence2

    model = Florence2(demo_int8_bundle[0])
    yield model
    model.close()


@pytest.mark.parametrize("tables, message", [
    ([{"name": "t", "text": "  "}], "the text to look for is empty"),
    ([{"name": "t", "text": "a very long phrase " * 40}], "text input too long"),
    ([{"name": "t", "text": "a cat", "zone": "nowhere"}], "unknown zone 'nowhere'"),
    ([{"name": "t", "text": "a cat"}, {"name": "t", "text": "a dog"}], "the name 't' is used twice"),
    ([{"name": "bad name", "text": "a cat"}], "name is letters"),
    ([{"name": "t", "text": "a cat", "frames": 0}], "frames is a whole number"),
    ([{"name": "t", "text": "a cat", "min_score": 2}], "min_score is a number from 0 to 1"),
    ([{"name": "t", "text": "a cat", "check": "maybe"}], "check is one of"),
    ([{"name": "t", "text": "a cat", "colour": "red"}], "unknown key 'colour'"),
])
def test_bad_triggers_are_one_line(demo, tables, message):
    with pytest.raises(FlorenceEdgeError, match=message) as err:
        triggers_from(tables, demo, zones_from([{"name": "door", "points": [[0, 0], [1, 0], [1, 1]]}]))
    assert "\n" not in str(err.value) and str(err.value).startswith("triggers")


def test_duplicate_zone_names(demo):
    square = [[0, 0], [1, 0], [1, 1]]
    with pytest.raises(FlorenceEdgeError, match="the name 'a' is used twice"):
        zones_from([{"name": "a", "points": square}, {"name": "a", "points": square}])


def test_a_present_phrase_is_found_and_near_misses_are_not(demo):
    from edge.demo.scenes import make_scene
    from edge.live.events.triggers import FrameLook

    scene = make_scene(2_000_003)
    encoded = demo.encode(scene.image)
    look = FrameLook(demo, encoded, scene.image.size, {"num_beams": 1})
    names = {s.name for s in scene.shapes}
    for shape in scene.shapes:
        found = look.look(Trigger("t", f"a {shape.name}"), None)
        assert found.found and found.category == shape.name, (shape.name, found)
        for colour in ("red", "green", "blue", "yellow"):
            if f"{colour} {shape.shape}" not in names:
                assert not look.look(Trigger("t", f"a {colour} {shape.shape}"), None).found
    assert not look.look(Trigger("t", "a purple star"), None).found


CLOCK_JUMP = 86400.0  # the wall clock stepped back a day, as NTP does to a Pi that booted with a clock ahead


@pytest.mark.skipif(os.environ.get("CI") != "true" or os.geteuid() != 0,
                    reason="steps this machine's wall clock back a day and forward again: CI only (as root)")
def test_a_wall_clock_jump_mid_run_leaves_cooldowns_and_durations_alone(demo_int8_bundle, tmp_path):
    """`live` on the scene generator with a trigger whose cooldown is 3 s; 8 s in, the machine's real
    clock is stepped back a day (restored at the end by the same step forward). Counted in wall
    time, the cooldown would never end (now - last off < 0) and durations would go negative."""
    import json
    import subprocess
    import sys
    import time

    from expect import ROOT

    config = tmp_path / "config.toml"
    config.write_text('[[triggers]]\nname = "square"\ntext = "a square"\nframes = 1\nclear_after = 0.5\n'
                      "cooldown = 3\ncheck = \"none\"\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "live", "--config", str(config), "-m",
                             str(demo_int8_bundle[0]), "--source", "scenes", "-t", "OD", "--events-only"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(8)
    time.clock_settime(time.CLOCK_REALTIME, time.time() - CLOCK_JUMP)
    try:
        time.sleep(16)
    finally:
        time.clock_settime(time.CLOCK_REALTIME, time.time() + CLOCK_JUMP)
    proc.send_signal(2)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in out.splitlines()]
    stats = json.loads(err.strip().splitlines()[-1].partition(": ")[2])
    assert 20 < stats["seconds"] < 60, stats
    seconds = [e["seconds"] for e in events]
    assert seconds == sorted(seconds) and 0 <= seconds[0] and seconds[-1] < 60
    jumped = [i for i in range(1, len(events)) if events[i]["time"] < events[i - 1]["time"] - CLOCK_JUMP / 2]
    assert len(jumped) == 1, [e["time"] for e in events]
    turns = [(i, e) for i, e in enumerate(events) if e["event"] in ("on", "off")]
    assert any(e["event"] == "on" and i >= jumped[0] for i, e in turns), turns  # it still turns on after the jump
    for (_, off), (_, on) in zip(turns, turns[1:]):
        if off["event"] == "off" and on["event"] == "on":
            assert on["seconds"] - off["seconds"] >= 3.0, (off, on)
