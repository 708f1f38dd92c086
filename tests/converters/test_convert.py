import json
import shutil

import numpy as np
import pytest

from converters import verify
from converters.convert import convert, decoder_buckets
from converters.errors import ConversionError
from edge import manifest as mf


def test_fp32_bundle_is_token_exact_with_generate(fp32_bundle):
    _, manifest = fp32_bundle
    tokens = manifest["parity"]["tokens"]
    assert tokens["total"] == len(verify.CASES) * 2 >= 6
    assert tokens["exact"] == tokens["total"]
    assert {c["task"] for c in tokens["cases"]} >= {"<CAPTION>", "<OD>", "<OCR_WITH_REGION>"}
    assert all(c["tokens"] > 5 for c in tokens["cases"])  # real decoding, not an immediate stop
    assert manifest["parity"]["passed"]
    for role in mf.GRAPH_ROLES:
        assert manifest["parity"]["graphs"][role]["rel_l2"] < 1e-4


def test_int8_bundle_reports_agreement_above_floor(int8_bundle):
    _, manifest = int8_bundle
    parity = manifest["parity"]
    assert parity["tokens"]["mean_agreement"] >= verify.INT8_MIN_AGREEMENT
    for role in mf.GRAPH_ROLES:
        assert parity["graphs"][role]["cosine"] > 0.99
        assert parity["graphs"][role]["rel_l2"] > 1e-5  # really quantized, not a float copy


def _largest_weight_dtype(path):
    from ai_edge_litert.interpreter import Interpreter

    details = [d for d in Interpreter(model_path=str(path)).get_tensor_details() if len(d["shape"]) == 2]
    return max(details, key=lambda d: int(np.prod(d["shape"])))["dtype"]


def test_int8_files_hold_int8_weights_and_are_smaller_than_fp32(fp32_bundle, int8_bundle):
    # Not a fixed ratio: a tiny model's decoder is mostly graph structure (one subgraph per signature).
    for role in mf.GRAPH_ROLES:
        name = f"{role}.tflite"
        assert int8_bundle[1]["files"][name]["bytes"] < 0.85 * fp32_bundle[1]["files"][name]["bytes"]
        assert _largest_weight_dtype(int8_bundle[0] / name) == np.int8
        assert _largest_weight_dtype(fp32_bundle[0] / name) == np.float32


def _weight_types(path):
    """The flatbuffer types of a file's weights, constants of rank 2 or more (the interpreter reports int4 as int8)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    return {names[t.Type()] for g in (model.Subgraphs(i) for i in range(model.SubgraphsLength()))
            for t in (g.Tensors(j) for j in range(g.TensorsLength()))
            if t.ShapeLength() >= 2 and _has_data(model.Buffers(t.Buffer()))}


def _has_data(buffer):
    return buffer.DataLength() > 0 or buffer.Offset() > 1  # inline, or stored after the flatbuffer


def test_int4_bundle_holds_int4_text_weights_and_agrees_with_generate(int8_bundle, int4_bundle):
    out, manifest = int4_bundle
    assert manifest["quantization"]["graphs"]["decoder"] == "dynamic_wi4b32_afp32"
    assert manifest["parity"]["tokens"]["mean_agreement"] >= verify.INT8_MIN_AGREEMENT
    for role in (mf.ENCODER, mf.DECODER):
        assert "INT4" in _weight_types(out / f"{role}.tflite")
        assert manifest["files"][f"{role}.tflite"]["bytes"] < int8_bundle[1]["files"][f"{role}.tflite"]["bytes"]
    assert "INT4" not in _weight_types(out / "vision.tflite")  # XNNPACK has no int4 convolution


def test_int4_vision_makes_the_vision_graphs_fully_connected_layers_int4_and_keeps_convolutions_int8(
        demo_fp32_bundle, tmp_path):
    """On the demo model: blocks of 32 need every layer's input size a multiple of 32, which the tiny one's
    vision tower (16 channels) is not; base and large are."""
    from converters import recipes

    fp32 = demo_fp32_bundle[0] / "vision.tflite"
    out = tmp_path / "vision.tflite"
    recipes.quantize_file(str(fp32), str(out), recipes.RECIPES["int4-vision"]["vision"])
    assert {"INT4", "INT8"} <= _weight_types(out)  # the fully-connected layers' and the convolutions'
    assert "INT4" not in _weight_types(fp32)
    assert recipes.describe("int4-vision")["graphs"]["vision"] == \
        "dynamic_wi8_afp32 on CONV_2D; dynamic_wi4b32_afp32 on FULLY_CONNECTED"


def test_manifest_describes_the_bundle(fp32_bundle, tiny_source):
    path, manifest = fp32_bundle
    loaded = mf.load_manifest(path)
    assert all(mf.verify_checksums(loaded).values())
    assert set(manifest["files"]) == {"vision.tflite", "encoder.tflite", "decoder.tflite", "tokenizer.json"}
    assert len(manifest["tasks"]) == 15
    assert manifest["tasks"]["<OD>"]["post_processing"] == "description_with_bboxes"
    assert manifest["generation"]["num_beams"] == 3
    assert manifest["generation"]["no_repeat_ngram_size"] == 3
    assert manifest["model"]["d_model"] == tiny_source.model.config.text_config.d_model
    assert manifest["image"]["height"] == 64
    assert manifest["special_tokens"]["loc_0"] == tiny_source.processor.tokenizer.convert_tokens_to_ids("<loc_0>")
    decoder = manifest["graphs"]["decoder"]
    assert manifest["model"]["prompt_lens"] == [16, 32] and manifest["model"]["prompt_len"] == 32
    assert sorted(manifest["graphs"]["encoder"]["signatures"]) == ["encode_p16", "encode_p32"]
    assert sorted(decoder["signatures"]) == sorted(mf.decode_signature_name(b, s, p) for b, s in
                                                    [(1, 16), (1, 64), (3, 16), (3, 64)] for p in (16, 32))
    sig = decoder["signatures"]["decode_b3_s64_p32"]
    assert sig["inputs"]["self_k_0"]["shape"] == [3, 4, 16, 64]  # K transposed: [batch, heads, head_dim, cache]
    assert sig["inputs"]["self_v_0"]["shape"] == [3, 4, 64, 16]
    assert sig["inputs"]["cross_k_0"]["shape"] == [1, 4, manifest["model"]["encoder_len"], 16]
    assert sig["outputs"]["logits"]["shape"] == [3, manifest["model"]["vocab_size"]]
    assert manifest["quantization"]["name"] == "fp32"
    assert manifest["tools"]["litert-torch"]


def test_decoder_buckets_cover_greedy_and_beams():
    assert decoder_buckets([64, 2048, 256], 3, 1024) == [(1, 64), (1, 256), (1, 1024), (3, 64), (3, 256),
                                                          (3, 1024)]
    assert decoder_buckets([64], 1, 1024) == [(1, 64)]


def test_refuses_existing_output_without_force(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConversionError, match="already exists"):
        convert(str(tiny_checkpoint), out)
    assert (out / "notes.txt").read_text() == "mine"


def test_force_replaces_an_earlier_bundles_files_and_keeps_the_users(tiny_checkpoint, fp32_bundle, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(fp32_bundle[0], out)
    (out / "notes.txt").write_text("mine")
    manifest = convert(str(tiny_checkpoint), out, quant="fp32", force=True, caches=(16,), beams=1, prompt_lens=(32,),
                       verify_tokens=4)
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "manifest.json").read_text())["files"] == manifest["files"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]


@pytest.mark.parametrize("src, message", [
    ("/no/such/dir", "no such directory"),
    ("nobody/no-such-model", "cannot load"),
])
def test_unknown_source_is_one_clear_error(src, message, tmp_path):
    with pytest.raises(ConversionError, match=message):
        convert(src, tmp_path / "out")


def test_not_a_florence_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConversionError, match="not a Florence-2 checkpoint"):
        convert(str(tmp_path), tmp_path / "out")


def test_original_remote_code_layout_names_what_to_pass(tmp_path):
    config = {"model_type": "florence2", "auto_map": {"AutoModelForCausalLM": "modeling_florence2.X"},
              "text_config": {"model_type": "florence2_language"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match="florence-community/Florence-2-base"):
        convert(str(tmp_path), tmp_path / "out")


def test_cli_reports_bad_source_in_one_line(capsys, tmp_path):
    from edge.cli import main

    code = main(["convert", str(tmp_path / "missing"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    last = err.splitlines()[-1]
    assert "Traceback" not in err
    assert last.startswith("florence-edge convert: ") and "no such directory" in last


def test_bundle_files_are_not_executable(int8_bundle, fp32_bundle):
    for bundle in (int8_bundle[0], fp32_bundle[0]):
        for path in bundle.iterdir():
            assert path.stat().st_mode & 0o111 == 0, path


@pytest.mark.parametrize("size", [96, 128])
def test_image_size_converts_a_smaller_or_larger_grid_token_exact(tiny_checkpoint, tmp_path, size):
    manifest = convert(str(tiny_checkpoint), tmp_path / "bundle", quant="fp32", caches=[64], prompt_lens=[32],
                       image_size=size)
    assert manifest["image"]["height"] == manifest["image"]["width"] == size
    assert manifest["model"]["image_tokens"] == (size // 32) ** 2 + 1
    assert manifest["graphs"]["vision"]["signatures"]["vision"]["inputs"]["pixel_values"]["shape"][-1] == size
    tokens = manifest["parity"]["tokens"]
    assert manifest["parity"]["passed"] and tokens["exact"] == tokens["total"], "fp32: token-exact with transformers"


@pytest.mark.parametrize("size", [100, 0, 1632])
def test_image_size_off_the_grid_is_refused_before_work(tiny_checkpoint, tmp_path, size):
    with pytest.raises(ConversionError, match="--image-size must be a multiple of 32"):
        convert(str(tiny_checkpoint), tmp_path / "bundle", quant="fp32", image_size=size)
    assert not (tmp_path / "bundle").exists()
