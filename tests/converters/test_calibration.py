"""converters.calibration and the static recipe (`--quant int8-static`) it feeds."""

import numpy as np
import pytest
from expect import cli, ends_cleanly
from PIL import Image

from converters.calibration import DEFAULT_PICTURES, calibration_pictures, vision_samples
from converters.errors import ConversionError
from edge import manifest as mf
from edge.commands.graph_file import GraphFile


def test_without_a_folder_the_drawn_scenes_are_used():
    pictures, said = calibration_pictures(count=3)
    assert len(pictures) == 3 and said == "3 drawn scenes (seeds 0-2)"
    assert DEFAULT_PICTURES == 32


def test_a_folder_of_pictures_is_read_in_name_order_and_capped(tmp_path):
    for i, colour in enumerate(("red", "green", "blue")):
        Image.new("RGB", (40, 30), colour).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    pictures, said = calibration_pictures(str(tmp_path), count=2)
    assert [p.getpixel((0, 0)) for p in pictures] == [(255, 0, 0), (0, 128, 0)]
    assert said == f"2 pictures from {tmp_path}"


def test_an_empty_folder_or_a_damaged_picture_is_one_line(tmp_path):
    with pytest.raises(ConversionError, match="no .jpg/.png"):
        calibration_pictures(str(tmp_path))
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ConversionError, match="cannot read .*a.jpg as a picture"):
        calibration_pictures(str(tmp_path))


def test_samples_are_the_processors_pixels_flat(tiny_source):
    pictures, _ = calibration_pictures(count=2)
    samples = vision_samples(tiny_source, pictures)[mf.VISION]
    expected = tiny_source.image_processor(images=pictures[1], return_tensors="np")["pixel_values"]
    assert len(samples) == 2
    np.testing.assert_array_equal(samples[1]["pixel_values"], expected.reshape(-1).astype(np.float32))


def test_a_static_bundle_keeps_int8_between_layers_and_passes_its_parity_check(demo_int8_static_bundle):
    out, manifest = demo_int8_static_bundle
    assert manifest["quantization"]["calibration"] == "32 drawn scenes (seeds 0-31)"
    assert manifest["parity"]["passed"]
    graph = GraphFile(out / "vision.tflite", mf.VISION)
    assert "QUANTIZE" in {op.kind for op in graph.ops}  # activations become int8 once ...
    fully_connected = [op for op in graph.ops if op.kind == "FULLY_CONNECTED" and op.weight_dtype]
    # ... and reach the fully-connected layers as int8, with no quantization at run time
    assert fully_connected and all(graph.tensor_type(op.inputs[0]) == "int8" for op in fully_connected)


def test_convert_refuses_an_empty_calibration_folder_in_one_line(tiny_checkpoint, tmp_path):
    result = cli("convert", tiny_checkpoint, "-o", tmp_path / "bundle", "--quant", "int8-static",
                 "--calibration-images", tmp_path)
    ends_cleanly(result, 2, "no .jpg/.png/.bmp/.webp pictures there", "convert")
    assert not (tmp_path / "bundle").exists()
