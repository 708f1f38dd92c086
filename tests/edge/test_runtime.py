"""The runtime layer: compiled models and the interpreter fallback agree, views are zero-copy,
packed weights are cached by checksum."""

import os
from pathlib import Path

import numpy as np
import pytest

from edge import manifest as mf
from edge import runtime
from edge.errors import FlorenceEdgeError
from edge.runtime import CompiledGraph, DeviceTensor, open_graph, weight_cache_file

ENCODE = mf.encode_signature_name(16)


def _decoder_inputs(sig, seed=0):
    rng = np.random.default_rng(seed)
    for name, view in sorted(sig.inputs.items()):
        if view.dtype == np.float32:
            view[...] = 0.0 if name == "cross_bias" else rng.standard_normal(view.shape)
    sig.inputs["token_ids"][...] = 5
    sig.inputs["position"][...] = 3


@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_compiled_model_and_interpreter_agree_on_a_decoder_step(quant, fp32_bundle, int8_bundle, tmp_path):
    m = mf.load_manifest({"fp32": fp32_bundle, "int8": int8_bundle}[quant][0])
    key = mf.decode_signature_name(1, 16, 16)
    shapes = m.signature(mf.DECODER, key)
    compiled = CompiledGraph(m.graph_path(mf.DECODER), 1, tmp_path / "decoder.xnnpack").signature(key, shapes)
    graph = open_graph(m.graph_path(mf.DECODER), 1, m.quantization, runtime="interpreter",
                       signatures=len(m.graph(mf.DECODER)["signatures"]))
    assert graph.kernels == "builtin"  # 8 signatures: XNNPACK would pack the weights 8 times
    interpreted = graph.signature(key, shapes)
    for sig in (compiled, interpreted):
        _decoder_inputs(sig)
        sig.invoke()
        assert sig.outputs["logits"].shape == tuple(shapes["outputs"]["logits"]["shape"])
    # int8: the interpreter runs this many-signature graph on its built-in kernels, which quantize
    # activations at run time their own way (XNNPACK: per row, asymmetric).
    tolerance = 1e-4 if quant == "fp32" else 1e-2
    np.testing.assert_allclose(compiled.outputs["logits"], interpreted.outputs["logits"], rtol=tolerance,
                               atol=tolerance)
    assert (tmp_path / "decoder.xnnpack").stat().st_size > 0


def test_inputs_are_read_in_place_and_outputs_are_live_views(int8_bundle):
    m = mf.load_manifest(int8_bundle[0])
    key = mf.decode_signature_name(1, 16, 16)
    sig = CompiledGraph(m.graph_path(mf.DECODER), 1, None).signature(key, m.signature(mf.DECODER, key))
    _decoder_inputs(sig)
    logits = sig.outputs["logits"]
    sig.invoke()
    first = logits.copy()
    sig.inputs["token_ids"][0, 0] = 6  # written into the bound memory, no call to copy it in
    sig.invoke()
    assert not np.allclose(first, logits)
    sig.inputs["token_ids"][0, 0] = 5
    sig.invoke()
    np.testing.assert_array_equal(first, logits)


def test_a_manifest_shape_that_does_not_fit_the_graph_is_named(fp32_bundle):
    m = mf.load_manifest(fp32_bundle[0])
    shapes = m.signature(mf.VISION, mf.VISION)
    wrong = {**shapes, "outputs": {"image_features": {"shape": [1, 2, 3], "dtype": "float32"}}}
    with pytest.raises(FlorenceEdgeError, match="image_features holds"):
        CompiledGraph(m.graph_path(mf.VISION), 1, None).signature(mf.VISION, wrong)


def test_weight_cache_is_named_by_checksum_and_skipped_when_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("FLORENCE_EDGE_CACHE", str(tmp_path / "cache"))
    path = weight_cache_file("ab" * 32)
    assert path == tmp_path / "cache" / f"{'ab' * 16}-x{runtime._XNNPACK_FLAGS:02x}.xnnpack"
    monkeypatch.setattr(runtime, "_XNNPACK_FLAGS", 0x3)
    assert weight_cache_file("ab" * 32) == tmp_path / "cache" / f"{'ab' * 16}-x03.xnnpack"
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FLORENCE_EDGE_CACHE", str(blocker / "cache"))  # a folder under a file
    assert weight_cache_file("ab" * 32) is None


def test_model_loads_from_its_weight_cache_with_the_same_results(int8_bundle, tmp_path, monkeypatch):
    from converters.verify import sample_images
    from edge.model import Florence2

    monkeypatch.setenv("FLORENCE_EDGE_CACHE", str(tmp_path))
    image = sample_images()[0]
    first = Florence2(int8_bundle[0], num_threads=1).run(image, "<OD>", max_new_tokens=12).token_ids
    cached = sorted(p.name for p in tmp_path.glob("*.xnnpack"))
    assert len(cached) == 3  # vision, encoder, decoder (beside the record of verified files)
    again = Florence2(int8_bundle[0], num_threads=1).run(image, "<OD>", max_new_tokens=12).token_ids
    uncached = Florence2(int8_bundle[0], num_threads=1, weight_cache=False).run(image, "<OD>",
                                                                                 max_new_tokens=12).token_ids
    assert first == again == uncached
    assert sorted(p.name for p in tmp_path.glob("*.xnnpack")) == cached


def test_graph_only_tensors_stay_in_runtime_memory_and_host_tensors_are_numpy(int8_bundle):
    m = mf.load_manifest(int8_bundle[0])
    sig = CompiledGraph(m.graph_path(mf.ENCODER), 1, None).signature(ENCODE, m.signature(mf.ENCODER, ENCODE))
    assert {n for n, t in sig.outputs.items() if isinstance(t, DeviceTensor)} == set(sig.outputs)
    assert all(isinstance(t, np.ndarray) for t in sig.inputs.values())
    k = sig.outputs["cross_k_0"]
    assert k.shape == tuple(m.signature(mf.ENCODER, ENCODE)["outputs"]["cross_k_0"]["shape"])
    values = np.random.default_rng(0).standard_normal(k.shape).astype(np.float32)
    k[...] = values
    np.testing.assert_array_equal(np.array(k), values)


def test_decoder_signatures_read_the_encoder_outputs_in_place(int8_bundle):
    from edge.model import Florence2

    model = Florence2(int8_bundle[0], num_threads=1)
    small, large = model._session(1, 16, 16), model._session(3, 64, 16)
    for name, produced in model._encoder(16).outputs.items():
        assert small.sig.inputs[name] is produced
        assert large.sig.inputs[name] is produced
    key = mf.decode_signature_name(1, 16, 16)
    with pytest.raises(FlorenceEdgeError, match="input cross_k_0 cannot be shared"):
        model.signature(mf.DECODER, key, share={"cross_k_0": np.zeros(3, np.float32)})
    wrong = DeviceTensor(model._encoder(16).outputs["cross_k_0"].buffer, (1, 2, 3), np.float32)
    with pytest.raises(FlorenceEdgeError, match=r"cannot share a float32\[1, 2, 3\] tensor as cross_k_0"):
        model.signature(mf.DECODER, key, share={"cross_k_0": wrong})


def test_the_interpreter_path_gives_the_compiled_paths_results(demo_int8_bundle):
    from edge.model import Florence2

    results = {}
    for path in ("compiled", "interpreter"):
        model = Florence2(demo_int8_bundle[0], num_threads=2, runtime=path)
        assert model.runtime == path
        results[path] = [model.run("samples/shapes-1.png", task, num_beams=beams).token_ids
                         for task in ("<CAPTION>", "<OD>") for beams in (1, 3)]
        if path == "interpreter":  # XNNPACK would pack each of the decoder's signatures separately
            assert {role: g.kernels for role, g in model._graphs.items()} == {
                mf.VISION: "xnnpack", mf.ENCODER: "xnnpack", mf.DECODER: "builtin"}
        model.close()
    assert results["compiled"] == results["interpreter"]


def test_a_native_failure_while_running_is_one_line_naming_file_and_signature():
    from pathlib import Path

    from edge.runtime import _guarded

    def fails():
        raise RuntimeError("CompiledModel error\n  Failed to invoke")

    with pytest.raises(FlorenceEdgeError) as caught:
        _guarded(Path("b/decoder.tflite"), "decode_b1_s64_p32", fails)()
    assert str(caught.value) == ("running decode_b1_s64_p32 of b/decoder.tflite failed (CompiledModel error Failed "
                                 "to invoke); the file may be damaged: check it with `florence-edge check`, or "
                                 "convert the model again")



def test_a_weight_cache_packed_under_other_xnnpack_flags_is_not_reused(demo_int8_bundle, tmp_path):
    """LiteRT takes such a cache as stale, says so whenever the model is freed and never writes it again."""
    import subprocess
    import sys

    code = ("import gc, sys; from edge import runtime; runtime._XNNPACK_FLAGS = int(sys.argv[2]); "
            "from edge import Florence2; m = Florence2(sys.argv[1]); "
            "m.run('samples/shapes-1.png', '<CAPTION>', max_new_tokens=4); del m; gc.collect(); print('dropped')")
    env = {**os.environ, "FLORENCE_EDGE_CACHE": str(tmp_path)}
    for flags in (0x3, runtime._XNNPACK_FLAGS, runtime._XNNPACK_FLAGS):  # an older release's cache, then ours twice
        done = subprocess.run([sys.executable, "-c", code, str(demo_int8_bundle[0]), str(flags)], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parents[2], env=env, timeout=300)
        assert done.returncode == 0 and done.stdout.strip() == "dropped"
        assert done.stderr == "", (flags, done.stderr[-2000:])
    assert len(list(tmp_path.glob("*.xnnpack"))) == 2 * 3  # three graphs under each flag set
