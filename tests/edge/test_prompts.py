import pytest

from edge.errors import FlorenceEdgeError
from edge.manifest import load_manifest
from edge.postprocess import dequantize
from edge.prompts import build_prompt, normalize_task, region_to_loc_tokens
from edge.text import TextCodec


def test_prompt_ids_equal_the_processors_for_every_task(fp32_bundle, tiny_source):
    manifest = load_manifest(fp32_bundle[0])
    codec = TextCodec(fp32_bundle[0] / "tokenizer.json", manifest.tokens)
    proc = tiny_source.processor
    n_image = proc.num_image_tokens
    for task in manifest.tasks:
        text = "a red car <loc_1><loc_2><loc_3><loc_4>" if "{input}" in manifest.tasks[task]["prompt"] else None
        ids, mask = codec.prompt_ids(build_prompt(manifest.tasks, task, text), manifest.prompt_lens)
        ref = proc(text=task + (text or ""), images=_blank(), return_tensors="np")["input_ids"][0]
        assert ids[0, : mask.sum()].tolist() == ref[n_image:].tolist(), task


def _blank():
    from PIL import Image

    return Image.new("RGB", (8, 8))


def test_task_names():
    assert normalize_task("od") == normalize_task("<OD>") == "<OD>"
    tasks = {"<OD>": {"prompt": "Locate."}, "<G>": {"prompt": "Find {input}."}}
    assert build_prompt(tasks, "G", "  a cat ") == "Find a cat."
    with pytest.raises(FlorenceEdgeError, match="unknown task 'X'; tasks: <G>, <OD>"):
        build_prompt(tasks, "X")
    with pytest.raises(FlorenceEdgeError, match="needs text"):
        build_prompt(tasks, "G", " ")
    with pytest.raises(FlorenceEdgeError, match="takes no text"):
        build_prompt(tasks, "OD", "cat")


def test_region_tokens_round_trip_through_dequantize():
    size = (640, 480)
    box = [100, 50, 400, 300]
    tokens = region_to_loc_tokens(box, size)
    bins = [int(t) for t in tokens.replace("<loc_", " ").replace(">", "").split()]
    back = dequantize(bins, size)
    assert all(abs(a - b) <= 1 for a, b in zip(back, box))
    assert region_to_loc_tokens([-5, 0, 9999, 480], size) == "<loc_0><loc_0><loc_999><loc_999>"
