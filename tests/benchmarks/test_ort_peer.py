"""The ONNX Runtime peer computes what transformers computes (tiny checkpoint, fp32 and int8 files)."""

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutput

from benchmarks import ort_peer
from converters import graphs
from edge.decoding import DecodeSettings

PROMPT = np.array([[0, 293, 263, 332, 294, 2]], np.int64)


def _greedy(model, features, steps):
    embeds = torch.cat([torch.from_numpy(features), model.get_input_embeddings()(torch.from_numpy(PROMPT))], 1)
    with torch.no_grad():
        encoded = model.model.language_model.encoder(inputs_embeds=embeds).last_hidden_state
        out = model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=encoded), max_new_tokens=steps + 1,
                             min_new_tokens=steps + 1, num_beams=1, do_sample=False, no_repeat_ngram_size=3)
    return out[0, 1:steps + 1].tolist()  # the last token is generate()'s forced EOS


def test_ort_peer_matches_transformers(tiny_source, tmp_path):
    model = tiny_source.model
    dims = graphs.Dims.from_model(model, tiny_source.image_size[0], tiny_source.image_tokens, PROMPT.shape[1])
    paths = ort_peer.export(model, dims, tmp_path / "fp32")
    quantized = ort_peer.quantize(paths, tmp_path / "int8", vision_ops=["MatMul"])
    assert sorted(quantized) == sorted(paths) and all(p.stat().st_size > 0 for p in quantized.values())

    ort = ort_peer.OrtFlorence(paths, dims, threads=1)
    pixels = np.random.default_rng(0).standard_normal((1, 3, dims.image_size, dims.image_size)).astype(np.float32)
    features = ort.vision(pixels)
    with torch.no_grad():
        reference = model.get_image_features(torch.from_numpy(pixels)).pooler_output.numpy()
    np.testing.assert_allclose(features, reference, atol=1e-4)

    g = model.generation_config
    settings = DecodeSettings(max_new_tokens=8, num_beams=1, no_repeat_ngram_size=3,
                              decoder_start_id=g.decoder_start_token_id, eos_id=g.eos_token_id,
                              forced_bos_id=g.forced_bos_token_id, forced_eos_id=g.forced_eos_token_id,
                              early_stopping=True, length_penalty=1.0)
    tokens, times = ort.decode(ort.encoder(features, PROMPT), settings, steps=6)
    assert tokens == _greedy(model, features, 6)
    assert len(times) == 6 and all(t > 0 for t in times)
