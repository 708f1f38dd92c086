"""edge.commands.graph_file: a bundle's graph read as ops, counted, and cut into graphs of their own."""

import numpy as np
import pytest
import torch
from expect import ROOT
from transformers import Florence2ForConditionalGeneration

from converters.graphs import VisionGraph
from edge import manifest as mf
from edge.commands.graph_file import GraphFile
from edge.errors import FlorenceEdgeError
from edge.runtime import open_graph

DEMO = ROOT / "models" / "florence2-shapes"


def _run(path, key, shapes, inputs):
    graph = open_graph(path, 2, "int8")
    signature = graph.signature(key, shapes)
    out = {name: np.array(value) for name, value in signature(**inputs).items()}
    graph.close()
    return out


@pytest.fixture(scope="module")
def vision(demo_int8_bundle):
    manifest = mf.load_manifest(demo_int8_bundle[0])
    return manifest, GraphFile(manifest.graph_path(mf.VISION), mf.VISION)


def _pixels(manifest):
    shape = manifest.signature(mf.VISION, mf.VISION)["inputs"]["pixel_values"]["shape"]
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def test_the_whole_graph_cut_out_computes_what_the_bundle_file_does(vision, tmp_path):
    manifest, graph = vision
    pixels = _pixels(manifest)
    expected = _run(manifest.graph_path(mf.VISION), mf.VISION, manifest.signature(mf.VISION, mf.VISION),
                    {"pixel_values": pixels})["image_features"]
    last = len(graph.ops) - 1
    (tmp_path / "whole.tflite").write_bytes(graph.cut(0, last))
    out = _run(tmp_path / "whole.tflite", "part", graph.part_shapes(0, last), {"input_0": pixels.reshape(-1)})
    np.testing.assert_array_equal(out["output_0"].reshape(expected.shape), expected)


def test_two_cuts_chained_through_their_boundary_tensors_give_the_whole(vision, tmp_path):
    manifest, graph = vision
    pixels = _pixels(manifest).reshape(-1)
    last, middle = len(graph.ops) - 1, len(graph.ops) // 2
    (tmp_path / "a.tflite").write_bytes(graph.cut(0, middle))
    (tmp_path / "b.tflite").write_bytes(graph.cut(middle + 1, last))
    (tmp_path / "whole.tflite").write_bytes(graph.cut(0, last))
    first = _run(tmp_path / "a.tflite", "part", graph.part_shapes(0, middle), {"input_0": pixels})
    # The second cut reads the first one's outputs by tensor, whatever order each lists them in.
    by_tensor = dict(zip(graph.boundary_outputs(0, middle), [first[f"output_{i}"] for i in range(len(first))]))
    needs = graph.boundary_inputs(middle + 1, last)
    assert set(needs) <= set(by_tensor)
    second = _run(tmp_path / "b.tflite", "part", graph.part_shapes(middle + 1, last),
                  {f"input_{i}": by_tensor[t] for i, t in enumerate(needs)})
    whole = _run(tmp_path / "whole.tflite", "part", graph.part_shapes(0, last), {"input_0": pixels})
    np.testing.assert_allclose(second["output_0"], whole["output_0"], rtol=1e-4, atol=1e-4)


def test_multiply_adds_match_the_checkpoints_layers_counted_by_torch(vision):
    """Every linear layer's and convolution's multiply-adds, hooked in transformers' own forward pass,
    against the count read from the graph's op shapes."""
    manifest, graph = vision
    model = Florence2ForConditionalGeneration.from_pretrained(DEMO).eval()
    counted = {"linear": 0, "conv": 0, "depthwise": 0}

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Linear):
            counted["linear"] += output.numel() * module.in_features
        else:
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            counted["depthwise" if module.groups > 1 else "conv"] += output.numel() * per_output

    tower = [model.model.vision_tower, model.model.multi_modal_projector]
    for part in tower:
        for module in part.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
                module.register_forward_hook(hook)
    size = manifest.image["height"]
    with torch.no_grad():
        VisionGraph(model)(torch.zeros(1, 3, size, size))
    by_kind = {}
    for op in graph.ops:
        # A fully-connected op without constant weights is an attention product of two activations.
        kind = op.kind if op.weight_dtype or op.kind != "FULLY_CONNECTED" else "BATCH_MATMUL"
        by_kind[kind] = by_kind.get(kind, 0) + op.macs
    assert by_kind["FULLY_CONNECTED"] == counted["linear"]
    assert by_kind["CONV_2D"] == counted["conv"]
    assert by_kind["DEPTHWISE_CONV_2D"] == counted["depthwise"]
    assert by_kind["BATCH_MATMUL"] > 0 and by_kind["SOFTMAX"] == 0


def test_ops_name_their_weights_type(vision):
    _, graph = vision
    kinds = {(op.kind, op.weight_dtype) for op in graph.ops}
    assert ("FULLY_CONNECTED", "int8") in kinds and ("DEPTHWISE_CONV_2D", "float32") in kinds
    assert ("ADD", "") in kinds and ("RESHAPE", "") in kinds


def test_a_damaged_or_missing_file_and_an_unknown_signature_are_one_line_errors(vision, tmp_path):
    manifest, _ = vision
    with pytest.raises(FlorenceEdgeError, match="no signature 'decode'"):
        GraphFile(manifest.graph_path(mf.VISION), "decode")
    with pytest.raises(FlorenceEdgeError, match="cannot read graph"):
        GraphFile(tmp_path / "absent.tflite", mf.VISION)
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(FlorenceEdgeError, match="cannot read graph"):
        GraphFile(tmp_path / "bad.tflite", mf.VISION)
