"""Florence-2-large's weight shapes convert (converters.test_checkpoints' "large-shapes": every
stage width, head count and text width of large, one block and layer each, a 64 px image)."""

import contextlib

import numpy as np
import pytest

from converters import recipes
from edge import manifest as mf
from edge.cli import main

CONVERT = ["--cache-sizes", "16", "--beams", "1", "--prompt-lens", "32", "--verify-tokens", "8"]


@pytest.fixture(scope="module")
def large_shapes(tmp_path_factory):
    from converters.test_checkpoints import write_test_checkpoint

    return write_test_checkpoint(tmp_path_factory.mktemp("ckpt") / "large-shapes", "large-shapes")


def test_large_shapes_convert_to_int8(large_shapes, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["convert", str(large_shapes), "-o", str(out), *CONVERT]) == 0
    manifest = mf.load_manifest(out)
    assert manifest.raw["parity"]["passed"]
    assert manifest.model["d_model"] == 1024
    from ai_edge_litert.interpreter import Interpreter

    # The 2048 x 3 x 3 x 1024 patch embedding the quantizer could not take is int8 now.
    weights = [d for d in Interpreter(model_path=str(out / "vision.tflite")).get_tensor_details()
               if list(d["shape"]) == [2048, 3, 3, 1024]]
    assert weights and all(d["dtype"] == np.int8 for d in weights)


def test_a_failing_stage_is_one_line_with_a_log_and_leaves_no_bundle(large_shapes, tmp_path, monkeypatch, capsys):
    """The failure large met before the quantizer was given its weights in slices."""
    monkeypatch.setattr(recipes, "_large_weights_by_slices", contextlib.nullcontext)
    out = tmp_path / "out" / "bundle"
    assert main(["convert", str(large_shapes), "-o", str(out), *CONVERT]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    line = err[-1]
    assert line.startswith("florence-edge convert: quantize vision graph (int8) failed: ")
    assert "Conv2d_conv" in line and "more dimensions than allowed" in line  # the tensor, what the library said
    assert not any(text.startswith("Traceback") for text in err)
    log = line.rsplit("(details: ", 1)[1].rstrip(")")
    text = open(log).read()
    assert "Traceback" in text and "uniform_quantize" in text
    assert not out.exists() and list(out.parent.iterdir()) == []  # nothing half-written, no .partial folder
