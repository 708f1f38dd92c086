"""One stream of typed events from the live loop's results: tracks (`new`, `update`, `end`) and text
triggers (`on`, `off`), with the camera's name and the times it concerns. As in Frigate, an id
names a tracked object (its new, updates and end share it) or a trigger's firing (an `on` and
its `off`), so snapshots and clips are kept per id.

`EventStream.frame()` takes one frame's results (tasks and trigger findings, or "reused") and
returns the events it caused. It holds no model and no thread: the loop runs the model, this
decides what happened. Times are the source's own seconds (`Frame.seconds`), so a file processed
faster or slower than real time gives the same events as the file played live; each event also
carries the wall-clock time of its frame and says whether the clock was set (a Pi without a
real-time clock boots in 1970 until NTP answers).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import ClassVar

from edge.draw import shapes
from edge.live.events.tracks import Detection, Tracker, TrackSettings, new_id
from edge.live.events.triggers import Finding, Trigger, TriggerState, has_area
from edge.live.events.zones import Zone

TYPES = ("new", "update", "end", "on", "off")
_CLOCK_SET_AFTER = 1_600_000_000  # epoch s (2020): a wall clock earlier than this was never set
# Tasks whose boxes become tracked objects.
TRACKED_TASKS = ("<OD>", "<OPEN_VOCABULARY_DETECTION>", "<DENSE_REGION_CAPTION>", "<REGION_PROPOSAL>")


@dataclass
class Event:
    """`type`: new/update/end (a tracked object) or on/off (a trigger); `name`: the trigger's name
    or the object's label; `before`/`after`: the object's or trigger's state before and after."""

    type: str
    id: str
    camera: str
    time: float  # wall clock (epoch s) of the frame that caused it
    seconds: float  # the source's own time of that frame
    frame: int
    name: str
    label: str
    box: list | None
    score: float
    zones: list = field(default_factory=list)
    before: dict | None = None
    after: dict | None = None
    clock_set: bool = True
    kind: ClassVar[str] = "event"  # beside the loop's "partial" and "result" `LiveEvent`s

    def as_json(self) -> dict:
        """The `live --json` line and the /events payload: the event type under "event"."""
        return {"event": self.type, "id": self.id, "camera": self.camera, "time": round(self.time, 3),
                "clock_set": self.clock_set, "seconds": round(self.seconds, 3), "frame": self.frame,
                "name": self.name, "label": self.label, "box": self.box, "score": self.score,
                "zones": self.zones, "before": self.before, "after": self.after}


def default_camera_name() -> str:
    return socket.gethostname() or "camera"


class EventStream:
    """Tracks, zones and triggers for one camera; `frame()` per processed frame."""

    def __init__(self, camera: str | None = None, zones: list[Zone] = (), triggers: list[Trigger] = (),
                 tracking: TrackSettings | None = None):
        self.camera = camera or default_camera_name()
        self.tracker = Tracker(tracking)
        self.zones: list[Zone] = list(zones)
        self.triggers: dict[str, TriggerState] = {t.name: TriggerState(t) for t in triggers}
        self.size = (1, 1)  # the newest frame's (width, height)
        self.on_change = lambda: None  # told after zones or triggers change (outputs that list them)

    def configure(self, zones: list[Zone] | None = None, triggers: list[Trigger] | None = None) -> None:
        """New zones and triggers (checked by the caller); a trigger that keeps its name and settings keeps
        its state, a changed one starts afresh."""
        if zones is not None:
            self.zones = list(zones)
        if triggers is not None:
            old = self.triggers
            self.triggers = {t.name: old[t.name] if t.name in old and old[t.name].trigger == t else TriggerState(t)
                             for t in triggers}
        self.on_change()

    @property
    def pending(self) -> bool:
        """Whether something awaits confirmation (a tentative track, a trigger part-way to `on`, an
        object part-way into a zone): a reused frame is no evidence, so the loop infers again."""
        tentative = any(not t.confirmed for t in self.tracker.tracks)
        streaking = any(0 < s.streak < s.trigger.frames or (not s.on and s.streak and not s.cooled)
                        for s in self.triggers.values())
        entering = any(0 < n for t in self.tracker.tracks for z, n in t.presence.inside_frames.items()
                       if z not in t.presence.current)
        return tentative or streaking or entering

    @property
    def zone_map(self) -> dict[str, Zone]:
        return {z.name: z for z in self.zones}

    def frame(self, number: int, seconds: float, wall: float, size, results: dict | None,
              findings: dict[str, Finding] | None) -> list[Event]:
        """Events caused by one frame: `results` {task: Result} and `findings` {trigger: Finding} of an
        inferred frame, both None for a reused one."""
        self.size = size
        if results is None:
            changes = self.tracker.keep_alive(seconds, wall)
        else:
            changes = self.tracker.update(detections(results), seconds, wall, size, self.zones)
        out = [self._track_event(kind, track, before, number, seconds, wall) for kind, track, before in changes]
        for name, state in self.triggers.items():
            before = trigger_state(state)
            turned = state.observe(None if findings is None else findings.get(name), seconds)
            if turned:
                if turned == "on":
                    state.since_time, state.firing = wall, new_id(wall)
                out.append(self._trigger_event(turned, state, before, number, seconds, wall))
        return out

    def _event(self, kind, event_id, wall, **fields) -> Event:
        return Event(kind, event_id, self.camera, wall, clock_set=wall > _CLOCK_SET_AFTER, **fields)

    def _track_event(self, kind, track, before, number, seconds, wall) -> Event:
        after = track.state()
        return self._event(kind, track.id, wall, seconds=seconds, frame=number, name=track.label, label=track.label,
                           box=after["box"], score=track.score, zones=after["current_zones"], before=before,
                           after=after)

    def _trigger_event(self, kind, state: TriggerState, before, number, seconds, wall) -> Event:
        after = trigger_state(state)
        f = state.finding
        zones = [] if f.box is None else [z.name for z in self.zones if z.holds(f.box, self.size)]
        return self._event(kind, state.firing, wall, seconds=seconds, frame=number, name=state.trigger.name,
                           label=state.trigger.text, box=after["finding"]["box"], score=f.score, zones=zones,
                           before=before, after=after)

    def snapshot(self) -> dict:
        """What is going on now: confirmed tracks, triggers that are on, the zones (for /state-like views)."""
        return {"camera": self.camera, "tracks": [t.state() for t in self.tracker.confirmed],
                "triggers": {name: trigger_state(s) for name, s in self.triggers.items()},
                "zones": [z.as_json() for z in self.zones]}


def trigger_state(state: TriggerState) -> dict:
    return {**state.trigger.as_json(), "on": state.on, "streak": state.streak, "finding": state.finding.as_json()}


def detections(results: dict) -> list[Detection]:
    """Boxes of the tracked tasks' answers, with their scores."""
    return [Detection(task, s.label, s.coords, s.score) for task, result in results.items() if task in TRACKED_TASKS
            for s in shapes(result.parsed[task], result.scores) if s.kind == "box" and has_area(s.coords)]
