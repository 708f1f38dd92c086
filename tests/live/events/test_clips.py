"""The event layer on the demo bundle, on held-out clips in which shapes move in 16 px steps, come
and go: ids stay, `new` and `end` come on time, zones are entered and left where the ground truth
crosses them, and triggers fire on every stretch with their target and on none without it."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.events import CLIP_FPS, clip_triggers, run_clip, track_quality, trigger_quality, write_clip
from edge.demo.scenes import CANVAS, Clip, ClipObject, make_clip
from edge.live.events.tracks import TrackSettings
from edge.live.events.zones import anchor, make_zone

SEEDS = range(4_100_000, 4_100_006)  # not the benchmark's seeds


@pytest.fixture(scope="module")
def demo(demo_int8_bundle):
    from edge.model import Florence2

    model = Florence2(demo_int8_bundle[0])
    yield model
    model.close()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return [(make_clip(seed, 16), write_clip(make_clip(seed, 16), folder / f"{seed}.mp4")) for seed in SEEDS]


def test_ids_hold_and_tracks_start_and_end_on_time(demo, clips):
    tracking = TrackSettings()
    for clip, path in clips:
        quality = track_quality(clip, run_clip(demo, path), CLIP_FPS, tracking)
        assert quality["missed"] == 0 and quality["id_switches"] == 0 and quality["fragmentations"] == 0, quality
        # `new` on the min_hits-th inferred frame; `end` on the first frame past expire_after.
        assert all(d <= tracking.min_hits for d in quality["new_delay_frames"]), quality
        assert all(tracking.expire_after < d <= tracking.expire_after + 1 / CLIP_FPS
                   for d in quality["end_delay_s"]), quality


def test_triggers_fire_on_their_targets_only(demo, clips):
    for clip, path in clips:
        triggers = clip_triggers(clip, np.random.default_rng(clip.seed))
        quality = trigger_quality(clip, run_clip(demo, path, [t for t, _ in triggers]), triggers)
        assert quality["misses"] == 0 and quality["false_fires"] == 0, (clip.seed, quality)


def crossing_clip() -> Clip:
    """A red square that walks right across the middle, bounces off the right edge and walks back."""
    base = make_clip(4_100_100, 1)
    square = ClipObject(0, "square", "red", 64.0, 0, 24, (16.0, 96.0), (1, 0))
    return Clip(4_100_100, 24, [square], base.background)


def test_zones_are_entered_and_left_where_the_point_crosses(demo, tmp_path):
    clip = crossing_clip()
    # The edge at 0.52 of the width: no ground-truth bottom centre (on the 16 px grid) lies on it.
    zone = make_zone("right", [(0.52, 0), (1, 0), (1, 1), (0.52, 1)], inertia=2)
    run = run_clip(demo, write_clip(clip, tmp_path / "cross.mp4"), zones=[zone])
    inside = [anchor(clip.boxes(f)[0])[0] / CANVAS > 0.52 for f in range(clip.frames)]
    expected, now = [], False
    for f in range(clip.frames):
        if not now and f >= 1 and inside[f] and inside[f - 1]:
            expected.append((f, ["right"]))
            now = True
        elif now and not inside[f]:
            expected.append((f, []))
            now = False
    seen = [(e.frame, e.zones) for e in run.events if e.type == "update" and e.before["current_zones"] != e.zones]
    assert len(expected) == 2 and seen == expected


def test_a_file_gives_the_same_events_played_live_or_every_frame(demo, clips):
    clip, path = clips[0]
    triggers = [t for t, _ in clip_triggers(clip, np.random.default_rng(clip.seed))]

    def key(events):
        return [(e.type, e.name, e.frame, e.seconds, e.box, e.zones) for e in events]

    fast = run_clip(demo, path, triggers)
    paced = run_clip(demo, path, triggers, every_frame=False)
    assert key(fast.events) == key(paced.events) and fast.events
