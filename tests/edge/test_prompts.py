import pytest

from edge.errors import FlorenceEdgeError
from edge.manifest import load_manifest
from edge.postprocess import dequantize
from edge.prompts import build_prompt, check_region, clamp_region, normalize_task, region_to_loc_tokens
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
    with pytest.raises(FlorenceEdgeError, match="takes no input"):
        build_prompt(tasks, "OD", "cat")


def test_regions_are_checked_and_clamped():
    assert check_region(["1", "2", "3.5", "4"]) == (1.0, 2.0, 3.5, 4.0)
    for bad in ([1, 2, 3], "1,2,3,4", [0, 0, float("inf"), 1], [5, 0, 5, 9], [0, 9, 5, 2], None):
        with pytest.raises(FlorenceEdgeError, match="region"):
            check_region(bad)
    assert clamp_region((10, 20, 30, 40), (64, 48)) == ((10, 20, 30, 40), None)
    assert clamp_region((-4, 20, 70, 40), (64, 48)) == (
        (0, 20, 64, 40), "region -4,20,70,40 reaches outside the 64x48 image; used 0,20,64,40")
    with pytest.raises(FlorenceEdgeError, match="lies outside the 64x48 image"):
        clamp_region((64, 0, 80, 10), (64, 48))


def test_region_tokens_round_trip_through_dequantize():
    size = (640, 480)
    box = [100, 50, 400, 300]
    tokens = region_to_loc_tokens(box, size)
    bins = [int(t) for t in tokens.replace("<loc_", " ").replace(">", "").split()]
    back = dequantize(bins, size)
    assert all(abs(a - b) <= 1 for a, b in zip(back, box))
    assert region_to_loc_tokens([-5, 0, 9999, 480], size) == "<loc_0><loc_0><loc_999><loc_999>"
