"""The export wrappers against transformers' own forward pass, in PyTorch."""

import torch
from transformers import Florence2ForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput

from converters import graphs


def _dims(model, prompt_len=12):
    return graphs.Dims.from_model(model, 64, 5, prompt_len)


def test_padded_encoder_and_cached_decoder_steps_match_full_forward(tiny_checkpoint):
    model = Florence2ForConditionalGeneration.from_pretrained(tiny_checkpoint, attn_implementation="eager").eval()
    dims = _dims(model)
    torch.manual_seed(0)
    with torch.no_grad():
        feats = graphs.VisionGraph(model)(torch.randn(1, 3, 64, 64))["image_features"]
        prompt = torch.tensor([[0, 293, 263, 332, 294, 2]], dtype=torch.int32)
        ids = torch.ones(1, dims.prompt_len, dtype=torch.int32)
        ids[:, :6] = prompt
        mask = (torch.arange(dims.prompt_len) < 6).int()[None]
        cross = graphs.EncoderGraph(model, dims)(feats, ids, mask)

        embeds = torch.cat([feats, model.get_input_embeddings()(prompt.long())], 1)
        encoded = model.model.language_model.encoder(inputs_embeds=embeds).last_hidden_state
        target = torch.tensor([[2, 0, 55, 77, 99, 13]])
        ref = model(encoder_outputs=BaseModelOutput(last_hidden_state=encoded), decoder_input_ids=target).logits[0]

        cache_size = 8
        step = graphs.DecoderStepGraph(model, dims, cache_size)
        cache = {n: t for n, t in graphs.decoder_inputs(dims, 1, cache_size).items()  # random: stale, masked
                 if n.startswith("self_")}
        bias = torch.zeros(1, dims.encoder_len)
        bias[:, dims.image_tokens + 6:] = graphs.MASKED
        for pos in range(target.shape[1]):
            out = step(target[:, pos:pos + 1].int(), torch.tensor([pos], dtype=torch.int32), bias, **cache, **cross)
            torch.testing.assert_close(out["logits"][0], ref[pos], atol=1e-5, rtol=1e-5)
            for i in range(dims.decoder_layers):
                cache[f"self_k_{i}"][:, :, :, pos] = out[f"new_k_{i}"][:, :, 0]  # K is stored transposed
                cache[f"self_v_{i}"][:, :, pos] = out[f"new_v_{i}"][:, :, 0]


def test_channels_last_vision_graph_matches_get_image_features(tiny_checkpoint):
    model = Florence2ForConditionalGeneration.from_pretrained(tiny_checkpoint).eval()
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = graphs.VisionGraph(model)(pixels)["image_features"]
        ref = model.get_image_features(pixels).pooler_output
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
