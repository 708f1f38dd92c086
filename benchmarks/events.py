"""What the event layer is worth on the demo model, on held-out scenes and videos it never saw.

1. Scores (`edge.confidence`): AUROC of OD boxes that match the ground truth against those that do
   not, and of phrases present in a scene against absent ones (near misses: the same shape in
   another colour, the same colour on another shape; things never drawn), for the grounding task's
   own score and for a trigger's finding.
2. Tracks and triggers on held-out clips (`edge.demo.scenes.make_clip`, written as H.264 videos and
   played through `live` with every frame processed): id switches and fragmentations, how many
   inferred frames `new` and `end` took, triggers' precision and recall per stretch, and what the
   triggers cost per inferred frame.

    python -m benchmarks.events -m build/demo-bundle [--scenes 100] [--clips 20]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import ImageDraw, ImageFilter

from edge.decoding import Choice, process_scores
from edge.demo.scenes import COLOURS, SHAPES, Clip, iou, make_clip, make_scene
from edge.live.events.stream import EventStream
from edge.live.events.tracks import TrackSettings
from edge.live.events.triggers import FrameLook, Trigger
from edge.live.loop import Live
from edge.live.record import Recorder
from edge.live.sources import open_source
from edge.model import Florence2

SCORE_SEED = 3_000_000  # held out: training used seeds below 1,000,000, eval 1,000,000 on
CLIP_SEED = 4_000_000
CLIP_FPS = 2.0  # a board infers about once a second; every frame of these clips is inferred
NEVER_DRAWN = ("a purple star", "a black hexagon", "an orange car", "a dog")


def auroc(positives, negatives) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    pos, neg = np.asarray(positives, float)[:, None], np.asarray(negatives, float)[None, :]
    if not pos.size or not neg.size:
        return float("nan")
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def distractor(image, rng):
    """The scene with a shape it was never trained on (a star or hexagon in a colour it never saw),
    half of them blurred: OD's mistakes come from these."""
    pen = ImageDraw.Draw(image)
    cx, cy = (int(v) for v in rng.integers(40, 216, 2))
    radius, corners = int(rng.integers(20, 40)), int(rng.choice([5, 6]))
    points = []
    for i in range(2 * corners if corners == 5 else 6):
        reach = radius if corners == 6 or i % 2 == 0 else radius * 0.45
        angle = math.pi * i / (corners if corners == 5 else 3)
        points.append((cx + reach * math.cos(angle), cy + reach * math.sin(angle)))
    pen.polygon(points, fill=[(150, 60, 200), (255, 140, 0), (90, 90, 90)][int(rng.integers(3))])
    return image.filter(ImageFilter.GaussianBlur(1.5)) if rng.random() < 0.5 else image


def phrases(scene, rng) -> list[tuple[str, bool, str]]:
    """(phrase, present, kind) for a scene: each shape, and near misses of it, and one never drawn."""
    present = {s.name for s in scene.shapes}
    out = [(f"a {name}", True, "present") for name in sorted(present)]
    for s in scene.shapes:
        colours = [c for c in COLOURS if f"{c} {s.shape}" not in present]
        shapes = [x for x in SHAPES if f"{s.colour} {x}" not in present]
        if colours:
            out.append((f"a {rng.choice(colours)} {s.shape}", False, "other colour"))
        if shapes:
            out.append((f"a {s.colour} {rng.choice(shapes)}", False, "other shape"))
    out.append((str(rng.choice(NEVER_DRAWN)), False, "never drawn"))
    return out


def score_separation(model: Florence2, scenes: int, seed: int = SCORE_SEED) -> dict:
    od = {True: [], False: []}
    grounding = {True: [], False: []}
    finding = {True: [], False: []}
    for n in range(scenes):
        rng = np.random.default_rng(seed + n)
        scene = make_scene(seed + n)
        image = distractor(scene.image.copy(), rng)
        encoded = model.encode(image)
        result = model.run(encoded, "OD", num_beams=1)
        answer = result.parsed["<OD>"]
        for box, label, score in zip(answer["bboxes"], answer["labels"], result.scores.get("bboxes", [])):
            od[any(s.shape == label and iou(s.box, box) >= 0.5 for s in scene.shapes)].append(score)
        look = FrameLook(model, encoded, image.size, {"num_beams": 1})
        for phrase, present, _ in phrases(scene, rng):
            grounded = model.run(encoded, "CAPTION_TO_PHRASE_GROUNDING", phrase, num_beams=1)
            grounding[present].append(max(grounded.scores.get("bboxes", [0.0]), default=0.0))
            found = look.look(Trigger("t", phrase, min_score=0.0), None)
            finding[present].append(found.score if found.found else 0.0)
    return {"scenes": scenes,
            "od": {"matching": len(od[True]), "not matching": len(od[False]), "auroc": auroc(od[True], od[False])},
            "grounding score": {"present": len(grounding[True]), "absent": len(grounding[False]),
                                "auroc": auroc(grounding[True], grounding[False])},
            "trigger finding": {"auroc": auroc(finding[True], finding[False])}}


def write_clip(clip: Clip, path: Path, fps: float = CLIP_FPS) -> Path:
    recorder = Recorder(path, fps, force=True)
    for frame in range(clip.frames):
        recorder.write(clip.image(frame))
    recorder.close()
    return path


@dataclass
class ClipRun:
    events: list = field(default_factory=list)
    seen: dict = field(default_factory=dict)  # frame -> [(track id, box)] of the tracks seen on it
    trigger_ms: list = field(default_factory=list)
    frame_ms: list = field(default_factory=list)


def run_clip(model: Florence2, path: Path, triggers=(), zones=(), tracking: TrackSettings | None = None,
             tasks=("OD",), every_frame: bool = True) -> ClipRun:
    """Play a clip file through `live` (every frame in order, or at its own rate as a camera would
    deliver it) and keep what the tracker saw."""
    run = ClipRun()

    class Watched(EventStream):
        def frame(self, number, *args):
            events = super().frame(number, *args)
            run.seen[number] = [(t.id, t.box) for t in self.tracker.tracks if t.confirmed and t.seen_now]
            return events

    stream = Watched("bench", zones, triggers, tracking)
    live = Live(model, open_source(str(path)), list(tasks), every_frame=every_frame, change_threshold=0.0,
                events=stream)
    for item in live:
        if item.kind == "event":
            run.events.append(item)
    run.trigger_ms = list(live._trigger_ms)
    run.frame_ms = list(live.latency.final)
    return run


def track_quality(clip: Clip, run: ClipRun, fps: float = CLIP_FPS, tracking: TrackSettings | None = None) -> dict:
    """Id switches, fragmentations, and `new`/`end` delays against the clip's ground truth."""
    tracking = tracking or TrackSettings()
    ids: dict[int, list[str]] = {o.id: [] for o in clip.objects}
    for frame, seen in run.seen.items():
        truth = clip.boxes(frame)
        for track_id, box in seen:
            best = max(truth.items(), key=lambda kv: iou(kv[1], box), default=None)
            if best is not None and iou(best[1], box) >= 0.5:
                ids[best[0]].append(track_id)
    switches = sum(sum(a != b for a, b in zip(seq, seq[1:])) for seq in ids.values())
    fragments = sum(max(0, len(set(seq)) - 1) for seq in ids.values())
    new_at = {e.after["id"]: e.frame for e in run.events if e.type == "new"}
    end_at = {e.after["id"]: e.seconds for e in run.events if e.type == "end"}
    new_delay, end_delay, missed = [], [], 0
    for obj in clip.objects:
        if not ids[obj.id]:
            missed += 1
            continue
        first = ids[obj.id][0]
        if first in new_at:
            new_delay.append(new_at[first] - obj.start)
        last = ids[obj.id][-1]
        if obj.end < clip.frames and last in end_at:
            end_delay.append(end_at[last] - (obj.end - 1) / fps)
    return {"objects": len(clip.objects), "missed": missed, "id_switches": switches, "fragmentations": fragments,
            "new_delay_frames": new_delay, "end_delay_s": end_delay}


def clip_triggers(clip: Clip, rng) -> list[tuple[Trigger, bool]]:
    """A trigger for each object, one for a near miss of one (another colour), and one never drawn,
    each with whether its target is in the clip."""
    present = {o.name for o in clip.objects}
    out = [(Trigger(f"t{o.id}", f"a {o.name}"), True) for o in clip.objects]
    o = clip.objects[0]
    colours = [c for c in COLOURS if f"{c} {o.shape}" not in present]
    shapes = [s for s in SHAPES if f"{o.colour} {s}" not in present]
    out.append((Trigger("colour", f"a {rng.choice(colours)} {o.shape}"), False))
    out.append((Trigger("shape", f"a {o.colour} {rng.choice(shapes)}"), False))
    out.append((Trigger("never", str(rng.choice(NEVER_DRAWN))), False))
    return out


def trigger_quality(clip: Clip, run: ClipRun, triggers: list[tuple[Trigger, bool]]) -> dict:
    """Per trigger: whether it fired while its target was in view (a hit), or without it (false)."""
    names = {o.id: f"a {o.name}" for o in clip.objects}
    hits = misses = false = quiet = 0
    delays = []
    for trigger, present in triggers:
        ons = [e for e in run.events if e.type == "on" and e.name == trigger.name]
        if present:
            obj = next(o for o in clip.objects if names[o.id] == trigger.text)
            inside = [e for e in ons if obj.start <= e.frame < obj.end]
            hits += bool(inside)
            misses += not inside
            delays += [inside[0].frame - obj.start] if inside else []
            false += len(ons) - len(inside)
        else:
            false += len(ons)
            quiet += not ons
    return {"hits": hits, "misses": misses, "false_fires": false, "quiet_absent": quiet, "on_delay_frames": delays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = Florence2(args.model, num_threads=args.threads)
    report = {"streaming": streaming_cost(model), "scores": score_separation(model, args.scenes)}
    totals: dict = {"objects": 0, "missed": 0, "id_switches": 0, "fragmentations": 0, "new_delay_frames": [],
                    "end_delay_s": [], "on_delay_frames": [], "hits": 0, "misses": 0, "false_fires": 0,
                    "quiet_absent": 0}
    trigger_ms, frame_ms, plain_ms = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.clips):
            clip = make_clip(CLIP_SEED + n)
            path = write_clip(clip, Path(folder) / f"clip-{n}.mp4")
            triggers = clip_triggers(clip, np.random.default_rng(CLIP_SEED + n))
            run = run_clip(model, path, [t for t, _ in triggers])
            plain = run_clip(model, path)  # the same clip without triggers: what they add
            for key, value in {**track_quality(clip, run), **trigger_quality(clip, run, triggers)}.items():
                totals[key] += value
            trigger_ms += run.trigger_ms
            frame_ms += run.frame_ms
            plain_ms += plain.frame_ms
    hits, false = totals["hits"], totals["false_fires"]
    totals.update(
        recall=hits / max(1, hits + totals["misses"]), precision=hits / max(1, hits + false),
        new_delay_frames=_spread(totals["new_delay_frames"]), end_delay_s=_spread(totals["end_delay_s"]),
        on_delay_frames=_spread(totals["on_delay_frames"]),
        triggers_ms_per_frame=round(statistics.median(trigger_ms), 1) if trigger_ms else 0.0,
        frame_ms_with_triggers=round(statistics.median(frame_ms), 1),
        frame_ms_without=round(statistics.median(plain_ms), 1))
    report["clips"] = {"clips": args.clips, "fps": CLIP_FPS, **totals}
    print(json.dumps(report, indent=2))


def _spread(values) -> dict:
    return {"median": statistics.median(values), "max": max(values), "n": len(values)} if values else {}


def streaming_cost(model: Florence2, images: int = 3, tokens: int = 64, rounds: int = 5) -> dict:
    """What scoring costs the streaming path: greedy CAPTION decoding as it is against the greedy loop
    as it was before scores (process the logits, take the argmax, no probabilities), alternated in
    one process on the same encoded pictures (each answer up to `tokens` tokens)."""
    import edge.model

    def unscored(stepper, s):
        seq = np.array([[s.decoder_start_id]], dtype=np.int64)
        while seq.shape[1] < s.max_length:
            logits = stepper.step(seq[:, -1], seq.shape[1] - 1).astype(np.float32, copy=True)
            token = int(np.argmax(process_scores(logits, seq, s)[0]))
            seq = np.concatenate([seq, [[token]]], axis=1)
            yield Choice(token, 0.0, 0.0)
            if token == s.eos_id:
                return

    scored = edge.model.greedy
    pictures = [model.encode(make_scene(SCORE_SEED + n).image) for n in range(images)]
    per_token = {"scored": [], "unscored": []}
    per_frame = {"scored": [], "unscored": []}  # the frame's vision run and the answer's encoder and tokens
    for _ in range(rounds):
        for name, search in (("unscored", unscored), ("scored", scored)):
            edge.model.greedy = search
            try:
                for encoded in pictures:
                    t = model.run(encoded, "CAPTION", num_beams=1, max_new_tokens=tokens).timings
                    per_token[name].append(t.decode_ms / t.tokens)
                    per_frame[name].append(encoded.vision_ms + t.encoder_ms + t.decode_ms)
            finally:
                edge.model.greedy = scored
    out = {"runs": len(per_token["scored"]), "tokens": tokens}
    for label, values in (("token", per_token), ("frame", per_frame)):
        med = {name: statistics.median(v) for name, v in values.items()}
        out[f"ms_per_{label}"] = {k: round(v, 3) for k, v in med.items()}
        out[f"{label}_slower_pct"] = round(100 * (med["scored"] / med["unscored"] - 1), 2)
    return out

if __name__ == "__main__":
    main()
