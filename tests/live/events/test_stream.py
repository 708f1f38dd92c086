"""The event stream as users get it: `live --events-only` and `--json` lines, the `on_event` callback,
the events guide's config example, and what an event says about the clock."""

from __future__ import annotations

import json
import re
from pathlib import Path

from expect import cli, ends_cleanly

from edge.live import config
from edge.live.events.settings import event_stream
from edge.live.events.stream import EventStream
from edge.live.events.tracks import TrackSettings

ROOT = Path(__file__).resolve().parents[3]
FIELDS = {"event", "id", "camera", "time", "clock_set", "seconds", "frame", "name", "label", "box", "score", "zones",
          "before", "after"}


def test_events_only_prints_every_type_once_its_time_comes(demo_int8_bundle, walking_clip, tmp_path):
    settings = tmp_path / "events.toml"
    settings.write_text('[camera]\nname = "porch"\n\n[[triggers]]\nname = "red"\ntext = "a red square"\n'
                        'clear_after = 1\n\n[events]\ntrack_expire = 1.0\n')
    result = cli("live", "-m", demo_int8_bundle[0], "--source", walking_clip, "-t", "OD", "--every-frame",
                 "--config", settings, "--events-only")
    ends_cleanly(result, 0, "")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(e) == FIELDS and e["camera"] == "porch" and e["clock_set"] for e in events)
    starts = [e["id"] for e in events if e["event"] in ("new", "on")]
    assert len(set(starts)) == len(starts)  # an id per object and per firing, shared by its later events
    for e in events:
        assert e["name"] == next(s["name"] for s in events if s["id"] == e["id"] and s["event"] in ("new", "on"))
    kinds = [(e["event"], e["name"]) for e in events]
    assert ("new", "square") in kinds and ("new", "circle") in kinds and ("end", "square") in kinds
    assert ("on", "red") in kinds and ("off", "red") in kinds and ("end", "circle") not in kinds
    square_end = next(e for e in events if e["event"] == "end" and e["name"] == "square")
    assert square_end["before"]["end_time"] is None and square_end["after"]["end_time"] is not None
    assert 1.0 < square_end["seconds"] - 9 / 2.0 <= 1.5  # last seen at frame 9 (2 fps), ends past 1 s
    red_on = next(e for e in events if e["event"] == "on")
    assert red_on["after"]["finding"]["category"] == "red square" and red_on["before"]["on"] is False


def test_json_has_results_and_events_apart(demo_int8_bundle, walking_clip):
    result = cli("live", "-m", demo_int8_bundle[0], "--source", walking_clip, "-t", "OD", "--every-frame", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    results = [line for line in lines if "event" not in line]
    assert len(results) == 16 and all("scores" in r for r in results)
    assert {line["event"] for line in lines if "event" in line} >= {"new"}


def test_on_event_sees_what_iteration_yields(demo_int8_bundle, walking_clip):
    from edge.live.loop import Live
    from edge.live.sources import open_source
    from edge.model import Florence2

    model = Florence2(demo_int8_bundle[0])
    called = []
    live = Live(model, open_source(str(walking_clip)), ["OD"], every_frame=True, events=EventStream("cam"),
                on_event=called.append)
    yielded = [item for item in live if item.kind == "event"]
    model.close()
    assert yielded and called == yielded


def test_an_unset_clock_is_said():
    from edge.model import Result

    stream = EventStream("cam", tracking=TrackSettings(min_hits=1))
    od = Result("<OD>", "", [], {"<OD>": {"bboxes": [[10, 10, 50, 50]], "labels": ["cat"]}}, scores={"bboxes": [0.9]})
    (event,) = stream.frame(0, 0.0, 30.0, (100, 100), {"<OD>": od}, {})  # 30 s after 1970: never set
    assert event.type == "new" and event.clock_set is False and event.as_json()["time"] == 30.0
    (event,) = EventStream("cam", tracking=TrackSettings(min_hits=1)).frame(0, 0.0, 1.8e9, (100, 100),
                                                                           {"<OD>": od}, {})
    assert event.clock_set is True


def test_the_guides_config_example_loads(demo_int8_bundle, tmp_path):
    from edge.model import Florence2

    guide = (ROOT / "docs" / "events.md").read_text()
    example = re.search(r"```toml\n(.*?)```", guide[:guide.index("## Scores")], re.S).group(1)
    (tmp_path / "events.toml").write_text(example)
    values = config.read_file(tmp_path / "events.toml")
    settings = config.Config({**{s.key: s.default for s in config.SETTINGS}, **values}, {})
    stream = event_stream(settings, Florence2(demo_int8_bundle[0]))
    assert stream.camera == "porch" and [z.name for z in stream.zones] == ["door"]
    assert stream.triggers["parcel"].trigger.zone == "door"
