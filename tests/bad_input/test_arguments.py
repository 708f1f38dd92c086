"""Arguments: tasks, text, regions, beams, lengths, threads, runtimes; all refused before the vision
graph runs, in one line on the CLI and as `FlorenceEdgeError` (never TypeError/AttributeError) in the API."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from expect import SAMPLE, cli, ends_cleanly

from edge.errors import FlorenceEdgeError, FlorenceEdgeWarning
from edge.model import Florence2

# (extra CLI arguments, what the one line says)
CLI_CASES = {
    "unknown task": (["-t", "NOPE"], "unknown task 'NOPE'"),
    "grounding without text": (["-t", "CAPTION_TO_PHRASE_GROUNDING"], "needs text input: --text"),
    "blank text": (["-t", "CAPTION_TO_PHRASE_GROUNDING", "--text", "   "], "needs text input"),
    "region task without region": (["-t", "REGION_TO_CATEGORY"], "needs a region: --region"),
    "region for a text task": (["-t", "CAPTION_TO_PHRASE_GROUNDING", "--region", "1,2,30,40"],
                               "none of the tasks CAPTION_TO_PHRASE_GROUNDING takes --region"),
    "text for a task without input": (["-t", "OD", "--text", "cat"], "none of the tasks OD takes --text"),
    "region outside the image": (["-t", "REGION_TO_CATEGORY", "--region", "300,300,400,400"],
                                 "lies outside the 256x256 image"),
    "beams not in bundle": (["-t", "OD", "--beams", "2"], "num_beams=2 is not in this bundle"),
    "zero beams": (["-t", "OD", "--beams", "0"], "num_beams must be at least 1"),
    "zero tokens": (["-t", "OD", "--max-new-tokens", "0"], "max_new_tokens must be at least 1"),
    "too many tokens": (["-t", "OD", "--max-new-tokens", "5000"], "exceeds this bundle's largest cache"),
    "zero threads": (["-t", "OD", "--threads", "0"], "num_threads must be a whole number of at least 1"),
    "negative threads": (["-t", "OD", "--threads", "-2"], "num_threads must be a whole number of at least 1"),
    "text too long": (["-t", "CAPTION_TO_PHRASE_GROUNDING", "--text", "a red square " * 40], "text input too long"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_arguments_on_the_cli(demo_int8_bundle, user_files, case):
    extra, message = CLI_CASES[case]
    draw = user_files / "drawn.png"
    result = cli("run", "-m", demo_int8_bundle[0], "-i", user_files / "photo.png", *extra, "--draw", draw)
    ends_cleanly(result, 2, message, "run")
    assert "vision" not in result.stdout and not draw.exists()  # refused before any work


@pytest.mark.parametrize("region", ["nan,0,10,10", "0,inf,10,10", "1,2,3", "a,b,c,d", "10,10,5,20", ""])
def test_malformed_regions_are_usage_errors(demo_int8_bundle, region):
    result = cli("run", "-m", demo_int8_bundle[0], "-i", SAMPLE, "-t", "REGION_TO_CATEGORY", f"--region={region}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --region: a region" in result.stderr.splitlines()[-1]


def test_a_region_with_a_leading_minus_parses_and_is_clamped_with_a_note(demo_int8_bundle):
    result = cli("run", "-m", demo_int8_bundle[0], "-i", SAMPLE, "-t", "REGION_TO_CATEGORY",
                 "--region", "-10,176,96,240", "--json")
    ends_cleanly(result, 0, "")
    assert "florence-edge run: note: region -10,176,96,240 reaches outside the 256x256 image; used 0,176,96,240" \
        in result.stderr


def test_an_untrained_task_runs_with_a_note(demo_int8_bundle):
    result = cli("run", "-m", demo_int8_bundle[0], "-i", SAMPLE, "-i", SAMPLE, "-t", "DETAILED_CAPTION", "--json")
    ends_cleanly(result, 0, "")
    assert result.stderr.count("florence-edge run: note: this model was not trained for <DETAILED_CAPTION>") == 1
    trained = cli("run", "-m", demo_int8_bundle[0], "-i", SAMPLE, "-t", "CAPTION", "--json")
    assert "note" not in trained.stderr


@pytest.mark.parametrize("args, message", [
    (["--runtime", "gpu"], "invalid choice: 'gpu'"),
    (["--threads", "two"], "invalid int value: 'two'"),
    (["--beams", "1.5"], "invalid int value: '1.5'"),
])
def test_malformed_options_are_usage_errors(demo_int8_bundle, args, message):
    result = cli("run", "-m", demo_int8_bundle[0], "-i", SAMPLE, "-t", "OD", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr and message in result.stderr


def test_an_unknown_runtime_in_the_environment_is_one_line(demo_int8_bundle, monkeypatch):
    monkeypatch.setenv("FLORENCE_EDGE_RUNTIME", "turbo")
    ends_cleanly(cli("run", "-m", demo_int8_bundle[0], "-i", SAMPLE, "-t", "OD"), 2, "unknown runtime 'turbo'", "run")


@pytest.fixture(scope="module")
def model(demo_int8_bundle):
    return Florence2(demo_int8_bundle[0])


IMAGE = np.zeros((64, 64, 3), np.uint8)


@pytest.mark.parametrize("call, message", [
    (lambda m: m.run(IMAGE, 5), "a task is a name"),
    (lambda m: m.run(IMAGE, None), "a task is a name"),
    (lambda m: m.run(IMAGE, "NOPE"), "unknown task"),
    (lambda m: m.run(IMAGE, "CAPTION_TO_PHRASE_GROUNDING", 5), "text input is a string"),
    (lambda m: m.run(IMAGE, "CAPTION_TO_PHRASE_GROUNDING"), "needs text input"),
    (lambda m: m.run(IMAGE, "REGION_TO_CATEGORY"), "needs a region"),
    (lambda m: m.run(IMAGE, "REGION_TO_CATEGORY", region="1,2,3,4"), "a region is 4 numbers"),
    (lambda m: m.run(IMAGE, "REGION_TO_CATEGORY", region=(1, 2, 3)), "a region is 4 numbers"),
    (lambda m: m.run(IMAGE, "REGION_TO_CATEGORY", region=(0, 0, float("nan"), 9)), "must be finite"),
    (lambda m: m.run(IMAGE, "REGION_TO_CATEGORY", region=(9, 0, 1, 9)), "x1 < x2"),
    (lambda m: m.run(IMAGE, "REGION_TO_CATEGORY", "a cat", region=(0, 0, 9, 9)), "not both"),
    (lambda m: m.run(IMAGE, "OD", region=(0, 0, 9, 9)), "takes no input"),
    (lambda m: m.run(IMAGE, "OD", num_beams="3"), "num_beams must be a whole number"),
    (lambda m: m.run(IMAGE, "OD", num_beams=True), "num_beams must be a whole number"),
    (lambda m: m.run(IMAGE, "OD", max_new_tokens=2.5), "max_new_tokens must be a whole number"),
    (lambda m: m.run(IMAGE, "OD", no_repeat_ngram_size=-1), "no_repeat_ngram_size must be 0"),
    (lambda m: Florence2(m.manifest.root, num_threads="2"), "num_threads must be a whole number"),
    (lambda m: Florence2(m.manifest.root, runtime="gpu"), "unknown runtime"),
])
def test_wrong_arguments_in_the_api_are_florence_edge_errors(model, call, message):
    with pytest.raises(FlorenceEdgeError, match=message):
        call(model)


def test_api_checks_come_before_the_vision_graph(model, monkeypatch):
    monkeypatch.setattr(model, "encode", lambda image: pytest.fail("the vision graph ran"))
    with pytest.raises(FlorenceEdgeError, match="num_beams=2"):
        model.run(IMAGE, "OD", num_beams=2)
    with pytest.raises(FlorenceEdgeError, match="lies outside the 256x256 image"):
        model.run(SAMPLE, "REGION_TO_CATEGORY", region=(300, 300, 400, 400))


def test_api_warnings_are_florence_edge_warnings(model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.run(SAMPLE, "REGION_TO_CATEGORY", region=(-5, 176, 96, 240), max_new_tokens=8)
        model.run(SAMPLE, "DENSE_REGION_CAPTION", max_new_tokens=8)
    messages = [str(w.message) for w in caught if issubclass(w.category, FlorenceEdgeWarning)]
    assert messages == ["region -5,176,96,240 reaches outside the 256x256 image; used 0,176,96,240",
                        "this model was not trained for <DENSE_REGION_CAPTION> (it was for <CAPTION>, <OD>, "
                        "<CAPTION_TO_PHRASE_GROUNDING>, <OCR>, <OCR_WITH_REGION>, "
                        "<REFERRING_EXPRESSION_SEGMENTATION>, <REGION_TO_CATEGORY>); its answer may mean nothing"]
