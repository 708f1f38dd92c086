"""Tracked objects: detections of successive inferred frames linked into tracks with stable ids.

A small tracker of our own rather than a library: norfair (whose size-normalised distance this
follows, as Frigate uses it) pins numpy<2, its forks are young, and Roboflow's `trackers` pulls
OpenCV and supervision onto a board for what is, at one inference a second and a handful of
objects, a hundred lines of numpy-free code. Score-split trackers (ByteTrack) need detector scores
Florence-2 does not have; ours come from `edge.confidence`.

Association: per label, by the distance between box centres divided by the boxes' size (the mean
of their square-rooted areas), taken from the last box or from where the track's last two boxes
say it went (the smaller of the two), plus how much width and height changed (|log ratio| each).
Pairs within a track's reach are linked cheapest first. A board infers about once a second, so an
object can move a box-width between two inferences: overlap (IoU) would lose it. The reach is
`max_distance` for a track seen moving that fast (or seen once), and shrinks to `still_distance`
for one seen standing still, growing with the time since it was last seen: a parked car missed on
one frame keeps its track instead of jumping to a car that just drove in beside it.

Lifecycle, counted in inferred frames and in the source's own seconds (never camera frames): a
track is tentative until seen on `min_hits` inferred frames in a row (then `new`); a tentative
track missed once is dropped; a confirmed one ends when it has not been seen for `expire_after`
seconds (`end`). A reused frame (the scene did not change) keeps the tracks it showed alive
without counting as a hit.
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from dataclasses import dataclass, field

from edge.live.events.zones import ZonePresence

HISTORY = 50  # boxes kept per track


@dataclass(frozen=True)
class TrackSettings:
    min_hits: int = 2  # inferred frames in a row before a track is announced
    expire_after: float = 5.0  # s unseen before it ends
    max_distance: float = 2.0  # normalised distance beyond which a detection is another object
    still_distance: float = 0.5  # the reach of a track seen standing still
    min_score: float = 0.5  # detections scored lower are ignored (Frigate's default threshold too)
    update_every: float = 60.0  # s: an update that reports only movement comes at most this often


@dataclass
class Detection:
    task: str
    label: str
    box: tuple
    score: float


@dataclass
class Track:
    id: str
    label: str
    task: str
    box: tuple
    score: float
    first_seen: float  # source seconds
    last_seen: float
    start_time: float  # wall clock (epoch s) of its first frame
    last_time: float
    best_score: float = 0.0
    hits: int = 1
    confirmed: bool = False
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))  # (source s, box)
    presence: ZonePresence = field(default_factory=ZonePresence)
    last_reported: float = 0.0  # source s of its last event
    reported_best: float = 0.0  # best score at its last event
    end_time: float | None = None
    seen_now: bool = False  # matched on the newest inferred frame

    def state(self) -> dict:
        """What events carry for this object (Frigate's before/after fields, ours in its terms)."""
        x1, y1, x2, y2 = self.box
        return {"id": self.id, "label": self.label, "task": self.task, "box": [round(v, 1) for v in self.box],
                "area": round((x2 - x1) * (y2 - y1), 1), "score": self.score, "top_score": self.best_score,
                "start_time": round(self.start_time, 3), "end_time": None if self.end_time is None else
                round(self.end_time, 3), "seconds": round(self.last_seen - self.first_seen, 3),
                "current_zones": list(self.presence.current), "entered_zones": list(self.presence.entered),
                "hits": self.hits}


def distance(track_box, box, predicted=None) -> float:
    """Size-normalised distance between a track's box (or where it is predicted) and a detection."""
    scale = (math.sqrt(_area(track_box)) + math.sqrt(_area(box))) / 2 or 1.0
    c = _centre(box)
    moved = min(math.dist(_centre(b), c) for b in ([track_box] if predicted is None else [track_box, predicted]))
    size = abs(math.log(_side(box, 0) / _side(track_box, 0))) + abs(math.log(_side(box, 1) / _side(track_box, 1)))
    return moved / scale + size


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _side(box, axis: int) -> float:
    return max(box[2 + axis] - box[axis], 1e-3)


def _area(box) -> float:
    return _side(box, 0) * _side(box, 1)


def _predicted(track: Track, seconds: float):
    """Where the track's last two boxes say it is now (None with fewer than two)."""
    if len(track.history) < 2:
        return None
    (t0, b0), (t1, b1) = track.history[-2], track.history[-1]
    if t1 <= t0:
        return None
    k = (seconds - t1) / (t1 - t0)
    return tuple(v1 + (v1 - v0) * k for v0, v1 in zip(b0, b1))


def _reach(track: Track, seconds: float, s: TrackSettings) -> float:
    """How far (normalised) a track's object may have gone by `seconds`: twice its last speed times
    the time since it was seen, plus `still_distance`, at most `max_distance`."""
    if len(track.history) < 2:
        return s.max_distance
    (t0, b0), (t1, b1) = track.history[-2], track.history[-1]
    speed = distance(b0, b1) / max(t1 - t0, 1e-3)
    return min(s.max_distance, s.still_distance + 2 * speed * max(seconds - t1, 0.0))


class Tracker:
    """Feed each inferred frame's detections to `update`, each reused frame to `keep_alive`; both
    return the lifecycle changes as (type, track, before-state or None)."""

    def __init__(self, settings: TrackSettings | None = None):
        self.settings = settings or TrackSettings()
        self.tracks: list[Track] = []

    @property
    def confirmed(self) -> list[Track]:
        return [t for t in self.tracks if t.confirmed]

    def update(self, detections: list[Detection], seconds: float, wall: float, size, zones) -> list:
        s = self.settings
        detections = [d for d in detections if d.score >= s.min_score]
        pairs = self._associate(detections, seconds)
        changes = []
        matched_tracks = {id(t) for t, _ in pairs}
        for track in self.tracks:
            track.seen_now = id(track) in matched_tracks
        # A tentative track missed once is dropped: a track starts only on hits in a row.
        self.tracks = [t for t in self.tracks if t.confirmed or t.seen_now]
        for track, det in pairs:
            before = track.state()
            zones_changed = self._hit(track, det, seconds, wall, size, zones)
            if not track.confirmed:
                if track.hits >= s.min_hits:
                    track.confirmed = True
                    changes.append(self._report("new", track, None, seconds))
                continue
            better = track.best_score >= track.reported_best + 0.05
            if zones_changed or better or seconds - track.last_reported >= s.update_every:
                changes.append(self._report("update", track, before, seconds))
        used = {id(d) for _, d in pairs}
        for det in detections:
            if id(det) not in used:
                track = Track(new_id(wall), det.label, det.task, tuple(det.box), det.score, seconds, seconds,
                              wall, wall, det.score)
                track.history.append((seconds, tuple(det.box)))
                track.presence.observe(zones, det.box, size, seconds)
                track.seen_now = True
                self.tracks.append(track)
                if s.min_hits <= 1:
                    track.confirmed = True
                    changes.append(self._report("new", track, None, seconds))
        return changes + self._expire(seconds, wall)

    def keep_alive(self, seconds: float, wall: float) -> list:
        """A reused frame: what the last inferred frame showed is still there."""
        for track in self.tracks:
            if track.seen_now:
                track.last_seen, track.last_time = seconds, wall
        return self._expire(seconds, wall)

    def _associate(self, detections: list[Detection], seconds: float) -> list[tuple[Track, Detection]]:
        s = self.settings
        costs = []
        for ti, track in enumerate(self.tracks):
            predicted, reach = _predicted(track, seconds), _reach(track, seconds, s)
            for di, det in enumerate(detections):
                if det.label == track.label and det.task == track.task:
                    cost = distance(track.box, det.box, predicted)
                    if cost <= reach:
                        costs.append((cost, ti, di))
        pairs, taken_t, taken_d = [], set(), set()
        for _, ti, di in sorted(costs):
            if ti not in taken_t and di not in taken_d:
                taken_t.add(ti)
                taken_d.add(di)
                pairs.append((self.tracks[ti], detections[di]))
        return pairs

    def _hit(self, track: Track, det: Detection, seconds: float, wall: float, size, zones) -> bool:
        track.box, track.score = tuple(det.box), det.score
        track.best_score = max(track.best_score, det.score)
        track.hits += 1
        track.last_seen, track.last_time = seconds, wall
        track.history.append((seconds, tuple(det.box)))
        return track.presence.observe(zones, det.box, size, seconds)

    def _report(self, kind: str, track: Track, before: dict | None, seconds: float):
        track.last_reported, track.reported_best = seconds, track.best_score
        return kind, track, before

    def _expire(self, seconds: float, wall: float) -> list:
        ended, kept = [], []
        for track in self.tracks:
            if track.confirmed and seconds - track.last_seen > self.settings.expire_after:
                before = track.state()
                track.end_time = track.last_time
                ended.append(("end", track, before))
            elif track.confirmed or seconds - track.last_seen <= self.settings.expire_after:
                kept.append(track)
        self.tracks = kept
        return ended


def new_id(wall: float) -> str:
    """Frigate's form: the first frame's time and six random characters."""
    return f"{wall:.6f}-{secrets.token_hex(3)}"
