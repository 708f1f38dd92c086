"""The self-test probe: a picture drawn by code (no file, the same on every machine), what a bundle
answers on it, and whether an answer matches the one recorded at conversion.

What is recorded, and what may move: the vision features as their RMS and 16 projections onto
fixed +-1 patterns (each the size of the RMS: any change to the features moves them by its own
size), compared within a tolerance of the RMS (int8 kernels round differently on another CPU, never by a few
percent of the whole); and for one or two tasks the greedy tokens with their log-probabilities. A
token the model was sure of (its probability left every other token at least e times less likely)
must come back exactly; from the first token that was a near tie on, a legitimate difference in
rounding may pick the other token and the rest of the answer with it, so only the tokens before it
are compared. Damage (a rotted weight, a torn cache, a wrong kernel) moves the features by far more
and the sure tokens with them: the demo bundle answered nothing at all on a damaged cache.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

VERSION = 1  # of the picture and the measure: a change records every bundle's probe again
TOKENS = 12  # new tokens per task: enough to cover a caption's start and an OD box or two
PROJECTIONS = 16
FEATURE_TOLERANCE = 0.05  # of the features' RMS, for each projection and the RMS itself
LOGPROB_TOLERANCE = 0.5  # nats, on the sure tokens
SURE = 1.0  # nats: log p - log(1 - p) at least this (p >= 0.73) makes a token sure
PREFERRED = ("<CAPTION>", "<OD>")


def picture() -> Image.Image:
    """320 x 240: a gradient, three rectangles of plain colours and a striped band, in integers."""
    y, x = np.mgrid[0:240, 0:320]
    rgb = np.stack([x * 255 // 319, y * 255 // 239, (x + y) * 255 // 558], axis=-1).astype(np.uint8)
    rgb[30:130, 20:120] = (220, 30, 30)
    rgb[120:220, 150:290] = (30, 60, 200)
    rgb[40:100, 200:300] = (250, 220, 40)
    rgb[170:230, 20:130] = np.where((x[170:230, 20:130, None] // 6) % 2, 255, 0)
    return Image.fromarray(rgb, "RGB")


def probe_tasks(manifest) -> list[str]:
    """CAPTION and OD where the model was trained for them, else the first trained task taking no input."""
    trained = manifest.trained_tasks or list(manifest.tasks)
    chosen = [task for task in PREFERRED if task in trained]
    if not chosen:
        chosen = [task for task in trained if "{input}" not in manifest.tasks[task]["prompt"]][:1]
    return chosen


def _projections(features: np.ndarray) -> list[float]:
    """<features, s_k> / sqrt(n) for +-1 patterns s_k from an integer hash of the index (no RNG whose
    stream could change between numpy versions)."""
    index = np.arange(features.size, dtype=np.uint64)
    out = []
    for k in range(PROJECTIONS):
        offset = np.uint64((k * 0x632BE59BD9B4E019 + 1) % 2**64)
        mixed = (index * np.uint64(0x9E3779B97F4A7C15) + offset) >> np.uint64(41)
        signs = np.where(mixed & np.uint64(1), 1.0, -1.0)
        out.append(float(features @ signs / math.sqrt(features.size)))
    return out


def measure(model, tasks: list[str], max_new_tokens: int = TOKENS) -> dict:
    """What `model` (a `Florence2`) answers on the probe picture: features summary, and per task the
    greedy tokens and their log-probabilities."""
    encoded = model.encode(picture())
    features = np.asarray(encoded.features, np.float64).reshape(-1)
    answers = {}
    for task in tasks:
        result = model.run(encoded, task, num_beams=1, max_new_tokens=max_new_tokens)
        answers[task] = {"tokens": result.token_ids, "logprobs": [round(c.logprob, 4) for c in result.choices]}
    return {"features": {"projections": _projections(features), "rms": float(np.sqrt(np.mean(features**2)))},
            "tasks": answers}


def _sure(logprob: float) -> bool:
    p = math.exp(logprob)
    return p >= 1.0 or logprob - math.log1p(-p) >= SURE


def record(measured: list[dict]) -> dict:
    """The manifest's `probe` from one measurement per runtime path (the first is the reference): the
    sure prefix of each answer where every path agrees, tolerances at least 4x what the paths differ by."""
    first = measured[0]
    rms = first["features"]["rms"] or 1.0
    spread = max((_feature_gap(first["features"], other["features"]) for other in measured[1:]), default=0.0)
    tasks = {}
    for task, answer in first["tasks"].items():
        exact = next((i for i, lp in enumerate(answer["logprobs"]) if not _sure(lp)), len(answer["tokens"]))
        for other in measured[1:]:
            theirs = other["tasks"][task]["tokens"]
            exact = min(exact, next((i for i, (a, b) in enumerate(zip(answer["tokens"], theirs)) if a != b),
                                    min(len(theirs), len(answer["tokens"]))))
        moved = max((abs(a - b) for other in measured[1:] for a, b in
                     zip(answer["logprobs"][:exact], other["tasks"][task]["logprobs"][:exact])), default=0.0)
        tasks[task] = {**answer, "exact": exact, "logprob_tolerance": round(max(LOGPROB_TOLERANCE, 4 * moved), 4)}
    return {"version": VERSION, "max_new_tokens": TOKENS,
            "features": {**first["features"], "tolerance": max(FEATURE_TOLERANCE, 4 * spread / rms)},
            "tasks": tasks}


def _feature_gap(ours: dict, theirs: dict) -> float:
    """The largest difference of a projection or the RMS (inf where either is not finite)."""
    pairs = [*zip(ours["projections"], theirs["projections"]), (ours["rms"], theirs["rms"])]
    return max(abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf for a, b in pairs)


def difference(recorded: dict, measured: dict) -> str | None:
    """What differs between the recorded probe and a measurement, in a few words, or None."""
    ref = recorded["features"]
    gap = _feature_gap(ref, measured["features"])
    if gap > ref["tolerance"] * ref["rms"]:
        return (f"the vision features moved by {gap / ref['rms']:.0%} of their RMS "
                f"(allowed {ref['tolerance']:.0%})" if math.isfinite(gap) else "the vision features hold NaN or inf")
    for task, want in recorded["tasks"].items():
        got = measured["tasks"][task]
        for i in range(want["exact"]):
            token = got["tokens"][i] if i < len(got["tokens"]) else None
            if token != want["tokens"][i]:
                return f"{task} token {i + 1} is {token}, recorded {want['tokens'][i]}"
            if abs(got["logprobs"][i] - want["logprobs"][i]) > want["logprob_tolerance"]:
                return (f"{task} token {i + 1}'s log-probability is {got['logprobs'][i]:.2f}, "
                        f"recorded {want['logprobs'][i]:.2f}")
    return None
