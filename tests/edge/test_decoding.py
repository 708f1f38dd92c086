"""The bundle's decoding and parsing against transformers' generate() and post-processing."""

import numpy as np
import pytest

from converters.verify import reference_tokens, sample_images
from edge.model import Florence2

REGION = "<loc_100><loc_120><loc_600><loc_700>"
TEXT = {"<CAPTION_TO_PHRASE_GROUNDING>": "a red circle and a blue square",
        "<REFERRING_EXPRESSION_SEGMENTATION>": "the red circle", "<OPEN_VOCABULARY_DETECTION>": "circle",
        "<REGION_TO_SEGMENTATION>": REGION, "<REGION_TO_CATEGORY>": REGION, "<REGION_TO_DESCRIPTION>": REGION,
        "<REGION_TO_OCR>": REGION}


@pytest.fixture(scope="module")
def fp32_model(fp32_bundle):
    return Florence2(fp32_bundle[0], num_threads=2)


@pytest.mark.parametrize("beams", [1, 3])
def test_all_tasks_tokens_and_parsing_equal_transformers(fp32_model, tiny_source, beams):
    tasks = sorted(fp32_model.manifest.tasks)
    assert len(tasks) == 15
    for image in sample_images():
        enc = fp32_model.encode(image)
        for task in tasks:
            text = TEXT.get(task)
            ref = reference_tokens(tiny_source, image, task, text, max_new_tokens=40, num_beams=beams)
            res = fp32_model.run(enc, task, text, num_beams=beams, max_new_tokens=40)
            assert res.token_ids == ref, (task, beams)
            ref_text = tiny_source.processor.batch_decode([ref], skip_special_tokens=False)[0]
            assert res.parsed == tiny_source.processor.post_process_generation(ref_text, task=task,
                                                                                image_size=image.size)


@pytest.mark.parametrize("beams", [1, 3])
def test_stream_pieces_add_up_to_the_text(fp32_model, beams):
    events = list(fp32_model.stream(sample_images()[0], "OD", num_beams=beams, max_new_tokens=30))
    result = events[-1].result
    assert result is not None and result.task == "<OD>"
    assert len(events) > 5  # streamed piece by piece, not at the end
    assert "".join(e.text for e in events[:-1]) == result.text
    assert result.timings.tokens == len(result.token_ids)


def test_several_tasks_on_one_encoding_reuse_the_vision_output(fp32_model, monkeypatch):
    enc = fp32_model.encode(sample_images()[0])
    monkeypatch.setattr(fp32_model, "_vision", None)  # any second vision run would fail
    for task in ("<CAPTION>", "<OD>", "<OCR>"):
        assert fp32_model.run(enc, task, max_new_tokens=8).timings.vision_ms == enc.vision_ms


def test_garbage_in_fresh_cache_memory_cannot_leak_into_attention(fp32_bundle, tiny_source):
    from edge import manifest as mf
    from edge.kv_cache import DecoderSession

    model = Florence2(fp32_bundle[0], num_threads=1)
    for cache in (16, 64):
        for prompt_len in model.manifest.prompt_lens:
            sig = model.signature(mf.DECODER, mf.decode_signature_name(1, cache, prompt_len))
            for name, view in sig.inputs.items():
                if name.startswith("self_"):
                    view[...] = np.nan if name.startswith("self_v") else 1e30  # what reused heap memory can hold
            model._decoders[(1, cache, prompt_len)] = DecoderSession(sig, model.manifest.model["decoder_layers"],
                                                                     model.manifest.model["image_tokens"])
    image = sample_images()[1]
    ref = reference_tokens(tiny_source, image, "<OD>", None, max_new_tokens=30)
    assert model.run(image, "<OD>", num_beams=1, max_new_tokens=30).token_ids == ref


def test_short_outputs_stay_in_the_smallest_cache(fp32_model, tiny_source):
    image = sample_images()[0]
    stepper = fp32_model.encode_prompt(fp32_model.encode(image), "<OD>", None,
                                       fp32_model.settings(num_beams=1, max_new_tokens=64))
    assert [s().size for s in stepper.sessions] == [16, 64]
    from edge.decoding import greedy

    settings = fp32_model.settings(num_beams=1, max_new_tokens=10)
    stepper = fp32_model.encode_prompt(fp32_model.encode(image), "<OD>", None, fp32_model.settings(max_new_tokens=64))
    tokens = list(greedy(stepper, settings))
    assert stepper.current.size == 16 and len(tokens) == 10


def test_no_repeat_ngram_ban_equals_brute_force():
    from edge.decoding import _banned_ngram_tokens

    def brute(seq, n):
        prefix = tuple(seq[len(seq) - n + 1:])
        return sorted(seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i:i + n - 1]) == prefix)

    rng = np.random.default_rng(0)
    for _ in range(2000):
        n = int(rng.integers(2, 5))
        seq = rng.integers(0, 4, int(rng.integers(n - 1, 30)))
        assert sorted(_banned_ngram_tokens(seq, n).tolist()) == brute(seq.tolist(), n)
