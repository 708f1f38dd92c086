"""The ONNX Runtime peer, in the layout the public Florence-2 ONNX ports use.

Four models: vision encoder, token embedding, text encoder (inputs_embeds), and a
decoder whose self-attention past grows by one entry per step (it attends only
over real positions); cross-attention K/V are computed once and passed back in.
Exported with the legacy `torch.onnx.export(dynamo=False)`, quantized with
`onnxruntime.quantization.quantize_dynamic`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from converters import graphs
from edge.decoding import process_scores


class Vision(nn.Module):
    """The tower as transformers writes it (NCHW), as the public ONNX ports export it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.get_image_features(pixel_values).pooler_output


class EmbedTokens(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed = model.get_input_embeddings()

    def forward(self, input_ids):
        return self.embed(input_ids)


class TextEncoder(nn.Module):
    """inputs_embeds + mask -> encoder states and every layer's cross-attention K/V."""

    def __init__(self, model, dims):
        super().__init__()
        lm = model.model.language_model
        self.encoder = lm.encoder
        self.cross = nn.ModuleList(layer.encoder_attn for layer in lm.decoder.layers)
        self.dims = dims

    def forward(self, inputs_embeds, attention_mask):
        hidden = self.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
        out = []
        for attn in self.cross:
            out += [graphs._heads(attn.k_proj(hidden), self.dims), graphs._heads(attn.v_proj(hidden), self.dims)]
        return tuple(out)


class DecoderWithPast(graphs.DecoderLayers):
    """One step attending over a past of any length; returns logits and the grown past."""

    @staticmethod
    def attend_once(q, k, v, bias):
        # Matmuls, as the public ONNX ports have them (ONNX Runtime does not repack their operands).
        return torch.softmax(q @ k.transpose(2, 3) + bias, dim=-1) @ v

    def forward(self, inputs_embeds, encoder_bias, *kv):
        d = self.dims
        n = len(self.layers)
        past, cross = kv[: 2 * n], kv[2 * n:]
        position = past[0].shape[2]
        hidden = self.layernorm_embedding(inputs_embeds + self.positions.weight[position + self.positions.offset])
        present = []
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            q = graphs._heads(attn.q_proj(hidden) * attn.scaling, d)
            k = torch.cat([past[2 * i], graphs._heads(attn.k_proj(hidden), d)], dim=2)
            v = torch.cat([past[2 * i + 1], graphs._heads(attn.v_proj(hidden), d)], dim=2)
            present += [k, v]
            ctx = torch.softmax(q @ k.transpose(2, 3), dim=-1) @ v
            hidden = layer.self_attn_layer_norm(hidden + attn.out_proj(graphs._merge(ctx, d)))
            hidden = self.cross_attend(layer, hidden, cross[2 * i], cross[2 * i + 1], encoder_bias)
            hidden = self.feed_forward(layer, hidden)
        return (self.lm_head(hidden)[:, 0], *present)


def export(model, dims, out: Path) -> dict[str, Path]:
    """Write the four fp32 .onnx files; name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    n = dims.decoder_layers
    kv_names = [f"{kind}_{i}" for i in range(n) for kind in ("k", "v")]
    heads = (1, dims.heads, 3, dims.head_dim)
    cross_shape = (1, dims.heads, dims.encoder_len, dims.head_dim)
    plans = {
        "vision": (Vision(model), (torch.randn(1, 3, dims.image_size, dims.image_size),),
                   ["pixel_values"], ["image_features"], {}),
        "embed": (EmbedTokens(model), (torch.zeros(1, 8, dtype=torch.int64),), ["input_ids"], ["embeds"],
                  {"input_ids": {1: "len"}, "embeds": {1: "len"}}),
        "encoder": (TextEncoder(model, dims), (torch.randn(1, dims.encoder_len, dims.d_model),
                                                torch.ones(1, dims.encoder_len, dtype=torch.int64)),
                    ["inputs_embeds", "attention_mask"], [f"cross_{k}" for k in kv_names],
                    {"inputs_embeds": {1: "len"}, "attention_mask": {1: "len"},
                     **{f"cross_{k}": {2: "len"} for k in kv_names}}),
        "decoder": (DecoderWithPast(model, dims),
                    (torch.randn(1, 1, dims.d_model), torch.zeros(1, 1, 1, dims.encoder_len),
                     *[torch.randn(*heads) for _ in kv_names], *[torch.randn(*cross_shape) for _ in kv_names]),
                    ["inputs_embeds", "encoder_bias", *[f"past_{k}" for k in kv_names],
                     *[f"cross_{k}" for k in kv_names]],
                    ["logits", *[f"present_{k}" for k in kv_names]],
                    {"encoder_bias": {3: "enc"}, **{f"past_{k}": {2: "past"} for k in kv_names},
                     **{f"cross_{k}": {2: "enc"} for k in kv_names},
                     **{f"present_{k}": {2: "total"} for k in kv_names}}),
    }
    paths = {}
    for name, (module, args, inputs, outputs, axes) in plans.items():
        paths[name] = out / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(module.eval(), args, str(paths[name]), input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=17, dynamo=False)
    return paths


def quantize(paths: dict[str, Path], out: Path, vision_ops=None) -> dict[str, Path]:
    """Dynamic int8 of every graph; `vision_ops` limits the vision graph's quantized op types."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out.mkdir(parents=True, exist_ok=True)
    result = {}
    for name, path in paths.items():
        result[name] = out / path.name
        ops = vision_ops if name == "vision" else None
        quantize_dynamic(str(path), str(result[name]), weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    return result


class OrtFlorence:
    """Greedy Florence-2 over the four ORT sessions, timed per stage."""

    def __init__(self, paths: dict[str, Path], dims, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.sessions = {k: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                         for k, p in paths.items()}
        self.dims = dims

    def vision(self, pixels: np.ndarray) -> np.ndarray:
        return self.sessions["vision"].run(None, {"pixel_values": pixels})[0]

    def encoder(self, features: np.ndarray, prompt_ids: np.ndarray) -> list[np.ndarray]:
        embeds = self.sessions["embed"].run(None, {"input_ids": prompt_ids})[0]
        inputs = np.concatenate([features, embeds], axis=1)
        mask = np.ones(inputs.shape[:2], np.int64)
        return self.sessions["encoder"].run(None, {"inputs_embeds": inputs, "attention_mask": mask})

    def decode(self, cross: list[np.ndarray], settings, steps: int) -> tuple[list[int], list[float]]:
        """`steps` greedy tokens (EOS ignored); returns tokens and per-step ms.

        A step includes the embedding lookup and the same host-side logits processing
        (no-repeat n-gram, forced BOS/EOS) as florence-edge's, so steps compare like for like.
        """
        n = self.dims.decoder_layers
        names = [f"{kind}_{i}" for i in range(n) for kind in ("k", "v")]
        past = [np.zeros((1, self.dims.heads, 0, self.dims.head_dim), np.float32) for _ in names]
        feeds_cross = {f"cross_{k}": v for k, v in zip(names, cross)}
        bias = np.zeros((1, 1, 1, cross[0].shape[2]), np.float32)
        seq = np.array([[settings.decoder_start_id]], dtype=np.int64)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            embeds = self.sessions["embed"].run(None, {"input_ids": seq[:, -1:]})[0]
            out = self.sessions["decoder"].run(None, {"inputs_embeds": embeds, "encoder_bias": bias,
                                                      **{f"past_{k}": v for k, v in zip(names, past)},
                                                      **feeds_cross})
            past = out[1:]
            scores = process_scores(out[0].astype(np.float32), seq, settings)
            scores[:, settings.eos_id] = -np.inf
            seq = np.concatenate([seq, [[int(np.argmax(scores[0]))]]], axis=1)
            times.append((time.perf_counter() - start) * 1e3)
        return seq[0, 1:].tolist(), times
