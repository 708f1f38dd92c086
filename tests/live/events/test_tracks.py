"""The tracker on boxes made here: ids held across large moves at a low rate, new after N inferred
frames, end after M seconds, reused frames keep tracks alive without counting."""

from __future__ import annotations

from edge.live.events.tracks import Detection, Tracker, TrackSettings, distance

SIZE = (640, 480)


def det(x, y, side=60, label="person", score=0.9):
    return Detection("<OD>", label, (x, y, x + side, y + side), score)


def feed(tracker, frames, start=0.0, step=1.0):
    """Each item a list of detections of one inferred frame, `step` s apart; returns the changes."""
    out = []
    for i, detections in enumerate(frames):
        out += [(kind, t.id, i) for kind, t, _ in tracker.update(detections, start + i * step, 1e9 + i, SIZE, [])]
    return out


def test_a_box_that_moves_its_own_width_each_inference_keeps_its_id():
    tracker = Tracker()
    changes = feed(tracker, [[det(20 + 60 * i, 100)] for i in range(8)])
    assert [kind for kind, _, _ in changes] == ["new"]
    assert len({t.id for t in tracker.tracks}) == 1 and tracker.tracks[0].hits == 8


def test_two_objects_of_one_label_crossing_paths_keep_theirs():
    tracker = Tracker()
    frames = [[det(40 + 50 * i, 100), det(560 - 50 * i, 300)] for i in range(10)]
    feed(tracker, frames)
    a, b = sorted(tracker.tracks, key=lambda t: t.first_seen)
    assert [box[1] for _, box in a.history] == [100] * 10 or [box[1] for _, box in b.history] == [100] * 10
    assert {t.box[1] for t in tracker.tracks} == {100, 300} and len(tracker.tracks) == 2


def test_new_after_min_hits_and_a_single_sighting_is_dropped():
    tracker = Tracker(TrackSettings(min_hits=3))
    changes = feed(tracker, [[det(100, 100)], [], [det(100, 100)], [det(100, 100)], [det(100, 100)]])
    assert changes == [("new", changes[0][1], 4)]  # the first sighting was dropped when missed


def test_end_after_expire_seconds_unseen():
    tracker = Tracker(TrackSettings(min_hits=1, expire_after=5))
    changes = feed(tracker, [[det(100, 100)]] + [[]] * 7)
    assert [(kind, i) for kind, _, i in changes] == [("new", 0), ("end", 6)]  # 6 s > 5 s after the last sighting


def test_reused_frames_keep_a_track_alive_but_do_not_start_one():
    tracker = Tracker(TrackSettings(min_hits=2, expire_after=2))
    tracker.update([det(100, 100)], 0.0, 1e9, SIZE, [])
    for t in range(1, 10):
        assert tracker.keep_alive(float(t), 1e9 + t) == []
    assert not tracker.tracks[0].confirmed  # no new evidence
    tracker.update([det(100, 100)], 10.0, 1e9 + 10, SIZE, [])
    assert tracker.tracks[0].confirmed
    for t in range(11, 40):  # the scene stays unchanged: still there
        assert tracker.keep_alive(float(t), 1e9 + t) == []


def test_a_low_score_is_not_tracked_and_another_label_is_another_object():
    tracker = Tracker(TrackSettings(min_hits=1, min_score=0.5))
    assert feed(tracker, [[det(100, 100, score=0.2)]]) == []
    kinds = feed(tracker, [[det(100, 100, label="cat")], [det(100, 100, label="dog")]])
    assert [k for k, _, _ in kinds] == ["new", "new"]


def test_distance_is_normalised_by_size_and_counts_size_change():
    small, big = (0, 0, 10, 10), (0, 0, 100, 100)
    assert distance((0, 0, 10, 10), (10, 0, 20, 10)) == distance((0, 0, 100, 100), (100, 0, 200, 100)) == 1.0
    assert distance(small, big) > 4  # same corner, ten times the size


def test_updates_on_zone_changes_and_a_better_score():
    from edge.live.events.zones import make_zone

    zone = make_zone("left", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)], inertia=1)
    tracker = Tracker(TrackSettings(min_hits=1))
    kinds = []
    for i, (x, score) in enumerate([(500, 0.6), (400, 0.61), (300, 0.62), (220, 0.63), (220, 0.9)]):
        kinds += [(k, t.presence.current) for k, t, _ in tracker.update([det(x, 100, score=score)], i, 1e9 + i,
                                                                          SIZE, [zone])]
    assert kinds == [("new", []), ("update", ["left"]), ("update", ["left"])]  # entered; then a better score
