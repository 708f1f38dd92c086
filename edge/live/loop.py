"""`Live`: frames in, the vision graph once per changed frame, every task's tokens streamed out.

Iterate over a `Live` to get `LiveEvent`s: a "partial" whenever a task's answer shows something
new (a box whose four location tokens are out, a longer caption), a "result" when it is complete.
Every event names the frame it came from. The capture thread keeps only the newest frame; a frame
whose thumbnail barely differs from the last encoded one reuses that encoding's results (the
vision graph does not run; its results come again with `reused=True`).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from edge.errors import FlorenceEdgeError
from edge.live.capture import Capture, Mailbox
from edge.live.change import DEFAULT_THRESHOLD, ChangeDetector
from edge.live.events.stream import Event, EventStream
from edge.live.events.triggers import DETECTION, FrameLook, scored_boxes
from edge.live.frames import Frame, Source
from edge.live.incremental import IncrementalParser, Partial
from edge.live.overlay import Overlay
from edge.live.sources import open_source
from edge.live.throttle import ThrottleWatch
from edge.model import Florence2, Result
from edge.prompts import normalize_task, task_input


@dataclass
class LiveEvent:
    kind: str  # "partial" or "result"
    frame: int  # the source's frame number
    time: float  # its capture time, seconds since the epoch
    task: str
    partial: Partial
    result: Result | None = None  # on "result" events (when reused: the earlier frame's)
    reused: bool = False  # the frame reused an earlier frame's encoding and results
    image_size: tuple[int, int] = (0, 0)  # (width, height) results are given in
    piece: str = ""  # on "partial" events: the text the newest token(s) added


_IDLE_BEAT = 1.0  # s between heartbeats while no frame comes
_RECENT = 500  # frames the figures are taken over: a loop that runs for months must not keep them all


def _recent() -> deque:
    return deque(maxlen=_RECENT)


@dataclass
class _Latency:
    first_shape: deque = field(default_factory=_recent)  # capture -> first drawable shape, ms
    final: deque = field(default_factory=_recent)  # capture -> complete result, ms
    work_to_first_shape: deque = field(default_factory=_recent)  # frame taken up -> first shape, ms


class Live:
    """The live loop over `source` (a `Source` or a spec for `open_source`) with `model`.

    `tasks`: task names; `text`/`region`: the input of the tasks that take one; `every_frame`:
    process every frame in order (recordings), else the newest wins; `loop`: restart a file at its
    end; `change_threshold`: see `edge.live.change` (0: encode every frame); `frames`: stop after
    this many frames with results; `num_beams` 1 (greedy) unless asked: beam search streams a
    token only once every beam agrees on it, which for a detection often comes near the end of
    the answer, and costs a decoder step per beam; `on_frame`: sees every captured frame (None during an outage),
    e.g. to draw and record it; `log`: one-line notices (outages); `stale_after`: seconds after
    which the overlay dims a result; `events`: tracks, zones and triggers (`edge.live.events`), whose
    `Event`s are yielded beside the results and handed to `on_event`."""

    def __init__(self, model: Florence2, source: Source | str, tasks: list[str], text: str | None = None,
                 region=None, every_frame: bool = False, loop: bool = False,
                 change_threshold: float = DEFAULT_THRESHOLD, frames: int | None = None,
                 num_beams: int = 1, max_new_tokens: int | None = None,
                 on_frame: Callable[[Frame | None], None] | None = None, log: Callable[[str], None] | None = None,
                 stale_after: float = 5.0, events: EventStream | None = None,
                 on_event: Callable[[Event], None] | None = None):
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise FlorenceEdgeError(f"frames must be a whole number of at least 1, got {frames!r}")
        self.model = model
        self.options = dict(num_beams=num_beams, max_new_tokens=max_new_tokens)
        self.inputs = self._checked_inputs(tasks, text, region)  # task key -> (text, region)
        self.tasks = list(self.inputs)
        self._config_lock = threading.Lock()
        self.change = ChangeDetector(change_threshold)
        self.frames = frames
        self.events = events
        self.on_event = on_event or (lambda event: None)
        self.overlay = Overlay(self.tasks, stale_after)
        self.overlay.zones = events.zones if events else []
        self.log = log or (lambda line: print(f"florence-edge live: {line}", file=sys.stderr))
        self.source = source if isinstance(source, Source) else open_source(
            source, (model.manifest.image["width"], model.manifest.image["height"]))
        self.mailbox = Mailbox()
        self.on_frame = on_frame or (lambda frame: None)  # may be set until iteration starts
        self.capture = Capture(self.source, self.mailbox, every_frame, loop, lambda f: self.on_frame(f), self.log)
        self.counts = {"inferred": 0, "reused": 0}
        self.failure: str | None = None  # why the run must end (a damaged bundle), for /healthz
        self.throttle = ThrottleWatch()
        self.latency = _Latency()
        self._started = None
        self._last: dict[str, tuple[Partial, Result]] = {}  # each task's latest answer, to reuse
        self._stages = _recent()  # the timings of recent results computed (not reused)
        self._trigger_ms = _recent()  # what the triggers cost each inferred frame
        self._worker_beat = time.monotonic()
        self.event_frame: Frame | None = None  # the frame the newest events came from (snapshots)

    def _beat(self) -> None:
        self._worker_beat = time.monotonic()

    def heartbeats(self) -> dict[str, float]:
        """When each thread of the loop last showed progress (monotonic s), for the watchdog."""
        return {"capture thread": self.capture.heartbeat, "inference": self._worker_beat}

    def _checked_inputs(self, tasks, text, region) -> dict:
        """Each task's (text, region), every task and option checked against the bundle (one-line
        `FlorenceEdgeError`s) before a camera opens or a configuration changes."""
        if not tasks:
            raise FlorenceEdgeError("name at least one task")
        inputs = {}
        for task in tasks:
            inputs[normalize_task(task)] = task_input(self.model.manifest.tasks, task, text, region)
            self.model.prepare(task, *inputs[normalize_task(task)], **self.options)
        return inputs

    def configure(self, tasks, text: str | None = None, region=None) -> None:
        """Change the tasks and their input while the loop runs: checked now, used from the next frame
        (which the vision graph encodes afresh)."""
        inputs = self._checked_inputs(tasks, text, region)
        with self._config_lock:
            self.inputs, self.tasks = inputs, list(inputs)
            self.overlay.tasks = list(inputs)
            self._last = {}

    def configure_events(self, zones=None, triggers=None) -> None:
        """New zones and triggers (checked already: `edge.live.events.settings`), from the next frame."""
        if self.events is None:
            raise FlorenceEdgeError("events are off in this loop")
        with self._config_lock:
            self.events.configure(zones, triggers)
            self.overlay.zones = self.events.zones

    @property
    def model_loaded(self) -> bool:
        return self.model.loaded

    def __iter__(self) -> Iterator[LiveEvent]:
        self._started = time.monotonic()
        self.capture.start()
        try:
            done = 0
            while self.frames is None or done < self.frames:
                self._beat()
                frame = self.mailbox.take(timeout=_IDLE_BEAT)
                if frame is None:
                    if self.mailbox.closed:
                        break
                    continue  # no frame yet (an outage): still alive
                yield from self._process(frame)
                done += 1
            if self.capture.error is not None:
                raise self.capture.error
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop capturing and release the source; idempotent, safe from a signal handler's thread."""
        self.capture.stop()
        self.mailbox.close()
        if self.capture.is_alive():
            self.capture.join(timeout=10)
        self.source.close()

    def _process(self, frame: Frame) -> Iterator[LiveEvent]:
        with self._config_lock:
            tasks, inputs, last = list(self.tasks), dict(self.inputs), self._last
        pending = self.events is not None and self.events.pending
        if last and not self.change.changed(frame.image) and not pending:
            self.counts["reused"] += 1
            for task in tasks:
                partial, result = last[task]
                yield LiveEvent("result", frame.number, frame.time, task, partial, result, True, frame.size)
            yield from self._events(frame, None, None)
            return
        if not last:
            self.change.changed(frame.image)  # the first frame (or the first after a change of tasks) is the reference
        self.counts["inferred"] += 1
        self.throttle.tick(self.counts["inferred"])
        begun = time.monotonic()
        encoded = replace(self.model.encode(frame.image), image_size=frame.size)
        first_shape = None
        results = {}
        for task in tasks:
            parser = IncrementalParser(self.model, task, frame.size)
            for event in self.model.stream(encoded, task, *inputs[task], **self.options):
                self._beat()
                if event.result is None:
                    partial = parser.push(event.token_ids)
                    if partial is None:
                        continue
                    if first_shape is None and (partial.shapes or partial.growing):
                        first_shape = time.monotonic()
                    self.overlay.update(partial, frame.size, frame.clock)
                    yield LiveEvent("partial", frame.number, frame.time, task, partial, image_size=frame.size,
                                    piece=event.text)
                    continue
                final = parser.finish(event.result.parsed, event.result.scores)
                last[task] = final, event.result
                results[task] = event.result
                self._stages.append(event.result.timings)
                self.overlay.update(final, frame.size, frame.clock)
                yield LiveEvent("result", frame.number, frame.time, task, final, event.result, False, frame.size)
        now = time.monotonic()
        self.latency.final.append((now - frame.clock) * 1e3)
        if first_shape is not None:
            self.latency.first_shape.append((first_shape - frame.clock) * 1e3)
            self.latency.work_to_first_shape.append((first_shape - begun) * 1e3)
        self.overlay.status = self.status_line()
        if self.events is not None:
            yield from self._events(frame, results, self._findings(encoded, frame.size, results))

    def _findings(self, encoded, size, results: dict) -> dict:
        """Each trigger's finding on an inferred frame (the frame's detections reused when OD ran)."""
        triggers = list(self.events.triggers.values())
        if not triggers:
            return {}
        start = time.monotonic()
        done = results.get(DETECTION)
        look = FrameLook(self.model, encoded, size, self.options,
                         None if done is None else scored_boxes(done.parsed[DETECTION], done.scores))
        zones = self.events.zone_map
        findings = {s.trigger.name: look.look(s.trigger, zones.get(s.trigger.zone)) for s in triggers}
        self._trigger_ms.append((time.monotonic() - start) * 1e3)
        self._beat()
        return findings

    def _events(self, frame: Frame, results, findings) -> Iterator[Event]:
        if self.events is None:
            return
        with self._config_lock:
            events = self.events.frame(frame.number, frame.seconds, frame.time, frame.size, results, findings)
        self.event_frame = frame
        for event in events:
            self.on_event(event)
            yield event

    def stats(self) -> dict:
        """Counts, rates and latencies so far (medians and 90th percentiles, ms)."""
        elapsed = time.monotonic() - self._started if self._started else 0.0
        return {
            "captured": self.capture.captured,
            "inferred": self.counts["inferred"],
            "reused": self.counts["reused"],
            "dropped": self.mailbox.dropped,
            "skipped": self.source.skipped,
            "outages": len(self.capture.outages),
            "outage_seconds": round(sum(self.capture.outages), 2),
            "seconds": round(elapsed, 2),
            "inferred_per_s": round(self.counts["inferred"] / elapsed, 3) if elapsed else 0.0,
            "first_shape_ms": _summary(self.latency.first_shape),
            "work_to_first_shape_ms": _summary(self.latency.work_to_first_shape),
            "final_ms": _summary(self.latency.final),
            "stages_ms": _stages(self._stages),
            "triggers_ms": _summary(self._trigger_ms),
            "throttled": self.throttle.summary(),
        }

    def status_line(self) -> str:
        stats = self.stats()
        latency = stats["final_ms"]["median"]
        captured = stats["captured"] / stats["seconds"] if stats["seconds"] else 0.0
        return (f"{captured:.1f} frames/s · {stats['inferred_per_s']:.2f} inferred/s · latency {latency:.0f} ms · "
                f"reused {stats['reused']} · dropped {stats['dropped']}{self.throttle.status()}")


def _stages(timings) -> dict:
    """Median ms of each stage over recent results: vision (once per frame, shown per result), text
    encoder, one decoder step."""
    timings = list(timings)  # a copy: another thread (the web view, the watchdog) may be asking
    if not timings:
        return {"vision": 0.0, "encoder": 0.0, "step": 0.0}
    return {"vision": round(statistics.median(t.vision_ms for t in timings), 1),
            "encoder": round(statistics.median(t.encoder_ms for t in timings), 1),
            "step": round(statistics.median(t.decode_ms / max(t.tokens, 1) for t in timings), 2)}


def _summary(values) -> dict:
    if not values:
        return {"median": 0.0, "p90": 0.0, "n": 0}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1), "n": len(ordered)}
