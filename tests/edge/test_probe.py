"""What the recorded probe holds exact and what it lets move: sure tokens exact, everything from the
first near tie (or the first token the runtime paths disagree on) free; features within a share of
their RMS; NaN never passes."""

from __future__ import annotations

import math

from edge.probe import difference, record


def _measured(tokens, logprobs, projections=(0.5, -0.25), rms=1.0):
    return {"features": {"projections": list(projections), "rms": rms},
            "tasks": {"<CAPTION>": {"tokens": list(tokens), "logprobs": list(logprobs)}}}


SURE, TIE = -0.01, math.log(0.45)


def test_tokens_after_a_near_tie_may_move_and_sure_ones_may_not():
    recorded = record([_measured([0, 5, 6, 7, 8], [0.0, SURE, TIE, SURE, SURE])])
    assert recorded["tasks"]["<CAPTION>"]["exact"] == 2
    assert difference(recorded, _measured([0, 5, 9, 9, 9], [0.0, SURE, TIE, SURE, SURE])) is None
    assert difference(recorded, _measured([0, 4, 6, 7, 8], [0.0, SURE, TIE, SURE, SURE])) == (
        "<CAPTION> token 2 is 4, recorded 5")
    assert difference(recorded, _measured([0, 5], [0.0, -2.0])) == (
        "<CAPTION> token 2's log-probability is -2.00, recorded -0.01")


def test_where_the_runtime_paths_disagree_is_free_and_their_spread_widens_the_tolerance():
    recorded = record([_measured([0, 5, 6, 7], [0.0, SURE, SURE, SURE], (0.5, -0.25)),
                       _measured([0, 5, 6, 8], [0.0, SURE, -0.3, SURE], (0.6, -0.25))])
    assert recorded["tasks"]["<CAPTION>"]["exact"] == 3
    assert recorded["tasks"]["<CAPTION>"]["logprob_tolerance"] >= 4 * 0.29
    assert recorded["features"]["tolerance"] >= 0.39
    assert difference(recorded, _measured([0, 5, 6, 1], [0.0, SURE, -1.0, SURE], (0.8, -0.25))) is None


def test_features_that_moved_or_hold_nan_fail():
    recorded = record([_measured([0], [0.0])])
    assert difference(recorded, _measured([0], [0.0], (0.52, -0.25))) is None
    assert difference(recorded, _measured([0], [0.0], (0.6, -0.25))) == (
        "the vision features moved by 10% of their RMS (allowed 5%)")
    assert difference(recorded, _measured([0], [0.0], (math.nan, -0.25))) == "the vision features hold NaN or inf"
    assert difference(recorded, _measured([0], [0.0], rms=0.0)) is not None  # answers of zeros
