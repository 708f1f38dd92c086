"""Scores from the decoder's own probabilities: each token's is its log-softmax, greedy and beam
alike; a shape's is found by its coordinates; results carry one per shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge.confidence import answer_score, shape_scores
from edge.decoding import LOC_WINDOW, Choice, DecodeSettings, beam_search, greedy

VOCAB, LOC0, LOC999 = 1100, 50, 1049


class Stepper:
    """Logits that depend on the last token and the position only, peaked enough to end."""

    def step(self, tokens, position):
        rows = []
        for token in np.asarray(tokens).tolist():
            rng = np.random.default_rng(token * 7919 + position)
            row = rng.normal(0, 3, VOCAB).astype(np.float32)
            row[2] += position * 0.8  # EOS grows likelier
            rows.append(row)
        return np.stack(rows)

    def reorder(self, source, length):
        pass


def settings(beams, **more):
    return DecodeSettings(max_new_tokens=12, num_beams=beams, no_repeat_ngram_size=3, decoder_start_id=2, eos_id=2,
                          forced_bos_id=0, forced_eos_id=2, loc_ids=(LOC0, LOC999), **more)


def log_softmax(row):
    row = row.astype(np.float64)
    return row - row.max() - np.log(np.exp(row - row.max()).sum())


@pytest.mark.parametrize("beams", [1, 3])
def test_each_token_carries_its_log_softmax_given_its_prefix(beams):
    s = settings(beams)
    choices = list((greedy if beams == 1 else beam_search)(Stepper(), s))
    assert choices[0] == Choice(0, 0.0, 0.0)  # forced BOS: certain
    previous = 0
    for position, choice in enumerate(choices[1:], start=1):
        expected = log_softmax(Stepper().step([previous], position)[0])
        if position < s.max_new_tokens - 1 or choice.token != 2:
            assert choice.logprob == pytest.approx(expected[choice.token], abs=1e-4)
        if LOC0 <= choice.token <= LOC999:
            lo, hi = max(LOC0, choice.token - LOC_WINDOW), min(LOC999, choice.token + LOC_WINDOW)
            assert choice.near == pytest.approx(np.log(np.exp(expected[lo:hi + 1]).sum()), abs=1e-4)
            assert choice.near >= choice.logprob
        else:
            assert choice.near == choice.logprob
        previous = choice.token


def test_beam_search_best_hypothesis_score_is_its_tokens_mean_logprob():
    s = settings(3)
    choices = list(beam_search(Stepper(), s))
    greedy_choices = list(greedy(Stepper(), s))
    total = sum(c.logprob for c in choices)
    assert total >= sum(c.logprob for c in greedy_choices) - 1e-3  # beam search finds at least greedy's


def _loc(b):
    return LOC0 + b


def test_shape_scores_find_each_box_by_its_coordinates_and_share_a_label():
    # "cat" box box "dog" box, on a 1000 x 1000 picture (bin b -> pixel b)
    tokens = [(0, 0.0), (7, math.log(0.5))] + [(_loc(b), math.log(0.9)) for b in (10, 20, 30, 40)] \
        + [(_loc(b), math.log(0.8)) for b in (50, 60, 70, 80)] + [(8, math.log(0.25))] \
        + [(_loc(b), math.log(1.0)) for b in (1, 2, 3, 4)] + [(2, math.log(0.9))]
    choices = [Choice(t, lp, lp) for t, lp in tokens]
    answer = {"bboxes": [[10, 20, 30, 40], [50, 60, 70, 80], [1, 2, 3, 4]], "labels": ["cat", "cat", "dog"]}
    scores = shape_scores(answer, choices, (LOC0, LOC999), (1000, 1000), frozenset({0, 1, 2}))
    assert scores == {"bboxes": [round(0.5 * 0.9, 4), round(0.5 * 0.8, 4), 0.25]}


def test_a_polygon_instance_gets_one_score_over_its_parts():
    sep = 9
    tokens = [(7, math.log(0.5))] + [(_loc(b), math.log(0.8)) for b in (1, 2, 3, 4, 5, 6)] + [(sep, 0.0)] \
        + [(_loc(b), math.log(0.2)) for b in (7, 8, 9, 10, 11, 12)]
    choices = [Choice(t, lp, lp) for t, lp in tokens]
    answer = {"polygons": [[[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]], "labels": [""]}
    scores = shape_scores(answer, choices, (LOC0, LOC999), (1000, 1000))
    assert scores["polygons"] == [round(0.5 * 0.4, 4)]  # geometric mean of 0.8 x6 and 0.2 x6


def test_answer_score_is_the_geometric_mean_of_free_tokens():
    assert answer_score([Choice(0, 0.0, 0.0), Choice(5, math.log(0.5), 0), Choice(2, math.log(0.125), 0)]) == 0.25
    assert answer_score([Choice(0, 0.0, 0.0)]) == 1.0


@pytest.fixture(scope="module")
def demo(demo_int8_bundle):
    from edge.model import Florence2

    model = Florence2(demo_int8_bundle[0])
    yield model
    model.close()


@pytest.mark.parametrize("beams", [1, 3])
def test_every_box_of_a_real_answer_has_a_score(demo, beams):
    from edge.demo.scenes import make_scene

    for seed in (2_000_001, 2_000_002):
        result = demo.run(make_scene(seed).image, "OD", num_beams=beams)
        boxes = result.parsed["<OD>"]["bboxes"]
        assert len(result.scores["bboxes"]) == len(boxes) > 0
        assert all(0.0 < s <= 1.0 for s in result.scores["bboxes"]) and 0.0 < result.score <= 1.0


def test_run_json_carries_scores(demo_int8_bundle):
    from expect import SAMPLE, cli

    result = cli("run", "-m", demo_int8_bundle[0], "-i", SAMPLE, "-t", "OD", "-t", "CAPTION", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    od, caption = lines
    assert len(od["scores"]["bboxes"]) == len(od["parsed"]["bboxes"]) and 0 < caption["score"] <= 1
    assert caption["scores"] == {}
