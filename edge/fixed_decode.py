"""Exactly N greedy decoder steps, EOS ignored, timed: what `bench` compares across boards and what
`bundle_memory` runs to reach a bundle's largest KV cache whatever the weights would answer."""

from __future__ import annotations

import time

import numpy as np

from edge.decoding import process_scores
from edge.model import Florence2
from edge.prompts import normalize_task, takes_input, takes_region

# A neutral input for tasks that need text: a phrase for grounding, a region for REGION_TO_*.
_TEXT = "a red circle"
_REGION = "<loc_100><loc_100><loc_600><loc_600>"


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - start) * 1e3


def decode_fixed(model: Florence2, enc, task: str, new_tokens: int) -> tuple[float, float, list[float]]:
    """Text encoder ms, first-step ms and per-step ms for exactly `new_tokens` greedy steps (EOS ignored)."""
    key = normalize_task(task)
    text = (_REGION if takes_region(key) else _TEXT) if takes_input(model.manifest.tasks, key) else None
    settings = model.settings(num_beams=1, max_new_tokens=new_tokens)
    session, encoder_ms = timed(model.encode_prompt, enc, key, text, settings)
    seq = np.array([[settings.decoder_start_id]], dtype=np.int64)
    steps = []
    for position in range(new_tokens):
        # A step is what a user waits for: the graph plus the host's logits processing.
        start = time.perf_counter()
        scores = process_scores(np.array(session.step(seq[:, -1], position), dtype=np.float32), seq, settings)
        scores[:, settings.eos_id] = -np.inf  # fixed length: never stop early
        seq = np.concatenate([seq, [[int(np.argmax(scores[0]))]]], axis=1)
        steps.append((time.perf_counter() - start) * 1e3)
    return encoder_ms, steps[0], steps[1:]
