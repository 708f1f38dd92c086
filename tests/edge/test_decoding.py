"""The bundle's decoding against transformers' generate(), token for token."""

import numpy as np
import pytest

from converters.verify import reference_tokens, sample_images
from edge.model import Florence2

CASES = [("<CAPTION>", None), ("<OD>", None), ("<REFERRING_EXPRESSION_SEGMENTATION>", "the red circle")]


@pytest.fixture(scope="module")
def fp32_model(fp32_bundle):
    return Florence2(fp32_bundle[0], num_threads=2)


@pytest.mark.parametrize("beams", [1, 3])
def test_tokens_equal_generate(fp32_model, tiny_source, beams):
    for image in sample_images():
        enc = fp32_model.encode(image)
        for task, text in CASES:
            ref = reference_tokens(tiny_source, image, task, text, max_new_tokens=40, num_beams=beams)
            ours = fp32_model.run(enc, task, text, num_beams=beams, max_new_tokens=40).token_ids
            assert ours == ref, (task, beams)


def test_stream_pieces_add_up_to_the_text(fp32_model):
    events = list(fp32_model.stream(sample_images()[0], "OD", num_beams=1, max_new_tokens=30))
    result = events[-1].result
    assert result is not None and result.task == "<OD>"
    assert "".join(e.text for e in events[:-1]) == result.text
    assert sum(len(e.token_ids) for e in events) <= len(result.token_ids)
    assert result.timings.tokens == len(result.token_ids)


def test_garbage_in_fresh_cache_memory_cannot_leak_into_attention(fp32_bundle, tiny_source):
    from edge import manifest as mf
    from edge.kv_cache import DecoderSession
    from edge.runtime import Signature

    model = Florence2(fp32_bundle[0], num_threads=1)
    sig = Signature(model._interpreters[mf.DECODER], mf.decode_signature_name(1, 64))
    for name, view in sig.inputs.items():
        if name.startswith("self_"):
            view[...] = np.nan if name.startswith("self_v") else 1e30  # what reused heap memory can hold
    model._decoders[(1, 64)] = DecoderSession(sig, model.manifest.model["decoder_layers"],
                                              model.manifest.model["image_tokens"])
    image = sample_images()[1]
    ref = reference_tokens(tiny_source, image, "<OD>", None, max_new_tokens=30)
    assert model.run(image, "<OD>", num_beams=1, max_new_tokens=30).token_ids == ref
