"""Parsing against transformers' Florence2Processor on generated and malformed sequences."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.postprocess import dequantize, parse

# One task per post-processing type.
KIND_TASKS = {
    "pure_text": "<CAPTION>", "ocr": "<OCR_WITH_REGION>", "description_with_bboxes": "<OD>",
    "bboxes": "<REGION_PROPOSAL>", "phrase_grounding": "<CAPTION_TO_PHRASE_GROUNDING>",
    "polygons": "<REFERRING_EXPRESSION_SEGMENTATION>",
    "description_with_bboxes_or_polygons": "<OPEN_VOCABULARY_DETECTION>",
}


def _compare(vocab, ids, size):
    ours_text = vocab["codec"].decode(ids)
    ref_text = vocab["tok"].batch_decode([ids], skip_special_tokens=False)[0]
    assert ours_text == ref_text
    for kind, task in KIND_TASKS.items():
        ref = vocab["processor"].post_process_generation(ref_text, task=task, image_size=size)
        assert parse(ours_text, task, kind, size, vocab["config"]) == ref, (kind, ours_text)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_parse_equals_transformers_on_generated_sequences(vocab, token_atoms, data):
    ids = sum(data.draw(st.lists(token_atoms, max_size=14)), [])
    size = data.draw(st.tuples(st.integers(1, 4000), st.integers(1, 4000)))
    _compare(vocab, ids, size)


@pytest.mark.parametrize("text", [
    "car<loc_10><loc_20><loc_30>",                                  # dangling: 3 locs
    "<loc_1><loc_2><loc_3><loc_4>",                                 # no label
    "cat<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8>dog<loc_9><loc_9><loc_9><loc_9>",
    "shape<poly><loc_1><loc_2><loc_3><loc_4><loc_5></poly>",         # odd polygon length
    "x<poly><loc_1><loc_2><sep><loc_3><loc_4><loc_5><loc_6></poly><poly><loc_7><loc_8></poly>",
    "it<loc_1><loc_2><loc_3><loc_4>the image<loc_5><loc_6><loc_7><loc_8>red car<loc_1><loc_1><loc_9><loc_9>",
    "</s><s>HELLO<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8></s><pad>",
])
def test_malformed_sequences(vocab, text):
    ids = vocab["tok"].encode(text, add_special_tokens=False)
    _compare(vocab, ids, (640, 480))


def test_dequantize_is_bin_centre_truncated():
    assert dequantize([0, 0, 999, 999], (1000, 500)) == [0, 0, 999, 499]
    assert dequantize([500, 500], (333, 777)) == [int(np.float32(500.5) * np.float32(0.333)), 388]
