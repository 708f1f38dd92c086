import io
import json

import pytest
from PIL import Image

from converters.verify import sample_images
from edge import runtime
from edge.cli import main
from edge.commands.run import run_images
from edge.errors import FlorenceEdgeError
from edge.model import Florence2


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, image in enumerate(sample_images()):
        paths.append(folder / f"scene{i}.png")
        image.save(paths[-1])
    return paths


def test_json_output_and_drawing(fp32_bundle, images, tmp_path, capsys):
    out = tmp_path / "drawn.jpg"
    code = main(["run", "-m", str(fp32_bundle[0]), "-i", str(images[0]), "-t", "OD", "-t", "<OCR_WITH_REGION>",
                 "--beams", "1", "--max-new-tokens", "40", "--json", "--draw", str(out)])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["task"] for line in lines] == ["<OD>", "<OCR_WITH_REGION>"]
    assert lines[0]["image_size"] == [320, 240]
    assert set(lines[0]["parsed"]) == {"bboxes", "labels"}
    assert set(lines[1]["parsed"]) == {"quad_boxes", "labels"}
    assert lines[0]["timings"]["tokens"] > 0
    drawn = Image.open(out)
    assert drawn.size == (320, 240)


def test_region_option_becomes_loc_tokens(fp32_bundle, images, capsys):
    code = main(["run", "-m", str(fp32_bundle[0]), "-i", str(images[0]), "-t", "REGION_TO_CATEGORY",
                 "--region", "32,24,160,120", "--beams", "1", "--max-new-tokens", "8", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["task"] == "<REGION_TO_CATEGORY>"


@pytest.mark.parametrize("args, message", [
    (["-t", "NOT_A_TASK"], "unknown task"),
    (["-t", "CAPTION_TO_PHRASE_GROUNDING"], "needs text input"),
    (["-t", "OD", "--text", "a car"], "none of the tasks OD takes --text"),
    (["-t", "CAPTION_TO_PHRASE_GROUNDING", "--text", "word " * 100], "text input too long"),
    (["-t", "OD", "--beams", "5"], "num_beams=5 is not in this bundle"),
    (["-t", "OD", "--max-new-tokens", "5000"], "exceeds this bundle's largest cache"),
])
def test_bad_task_input_is_one_line(fp32_bundle, images, capsys, args, message):
    code = main(["run", "-m", str(fp32_bundle[0]), "-i", str(images[0]), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "Traceback" not in err and message in err.splitlines()[-1]


def test_bad_image_and_bundle_are_one_line(fp32_bundle, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 nope")
    assert main(["run", "-m", str(fp32_bundle[0]), "-i", str(broken), "-t", "OD"]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["run", "-m", str(tmp_path), "-i", str(broken), "-t", "OD"]) == 2
    assert "not a florence-edge bundle" in capsys.readouterr().err


def test_tflite_runtime_fallback_refuses_dynamic_int8_and_runs_fp32(fp32_bundle, int8_bundle, monkeypatch, capsys):
    from ai_edge_litert.interpreter import Interpreter  # stands in for tflite-runtime's

    image = Image.new("RGB", (64, 48), (200, 30, 30))
    expected = Florence2(fp32_bundle[0], num_threads=1).run(image, "OD", max_new_tokens=8).token_ids
    monkeypatch.setattr(runtime, "runtime_name", lambda: "tflite-runtime")
    monkeypatch.setattr(runtime, "_fallback_interpreter", lambda: Interpreter)
    with pytest.raises(FlorenceEdgeError, match="tflite-runtime silently computes as zeros"):
        Florence2(int8_bundle[0])
    assert Florence2(fp32_bundle[0], num_threads=1).run(image, "OD", max_new_tokens=8).token_ids == expected
    assert "using tflite-runtime" in capsys.readouterr().err


def test_huge_and_odd_images_are_converted(fp32_bundle):
    model = Florence2(fp32_bundle[0], num_threads=1)
    for image in (Image.new("RGBA", (4000, 3000), (10, 200, 30, 128)), Image.new("L", (5, 7), 80),
                  Image.new("I;16", (64, 48), 40000)):
        res = model.run(image, "OD", num_beams=1, max_new_tokens=8)
        assert res.token_ids and res.task == "<OD>"


@pytest.mark.parametrize("count", [1, 2])
def test_the_vision_graph_is_freed_once_the_last_image_is_encoded(fp32_bundle, images, count, monkeypatch):
    from edge import manifest as mf

    model = Florence2(fp32_bundle[0], num_threads=1)
    held = []
    stream = model.stream

    def watch(*args, **kwargs):
        held.append(mf.VISION in model._graphs)
        return stream(*args, **kwargs)

    monkeypatch.setattr(model, "stream", watch)
    run_images(model, images[:count], ["<CAPTION>"], out=io.StringIO())
    assert held == [True] * (count - 1) + [False], "only the last image decodes without the vision graph"
