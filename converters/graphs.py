"""Export wrappers: one fixed-shape `nn.Module` per bundle graph.

Each wrapper reads every size from the checkpoint's config and reuses the
checkpoint's own modules (no weights are copied), so a base, large or fine-tuned
Florence-2 exports through the same code. `transformers` cannot export
`Florence2ForConditionalGeneration.forward` as a whole, so the model is cut where
the device runtime needs it: image -> features, prompt -> cross-attention K/V,
one decoder step over a fixed-size self-attention cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from converters.vision_layout import ChannelsLastVision
from edge.kv_cache import MASKED


@dataclass(frozen=True)
class Dims:
    """Every size the graphs need, read from a checkpoint's config."""

    image_size: int
    image_tokens: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    heads: int
    head_dim: int
    vocab_size: int
    max_positions: int
    prompt_len: int

    @property
    def encoder_len(self) -> int:
        return self.image_tokens + self.prompt_len

    @classmethod
    def from_model(cls, model, image_size: int, image_tokens: int, prompt_len: int) -> Dims:
        text = model.config.text_config
        return cls(
            image_size=image_size, image_tokens=image_tokens, d_model=text.d_model,
            encoder_layers=text.encoder_layers, decoder_layers=text.decoder_layers,
            heads=text.decoder_attention_heads, head_dim=text.d_model // text.decoder_attention_heads,
            vocab_size=text.vocab_size, max_positions=text.max_position_embeddings, prompt_len=prompt_len,
        )


    @classmethod
    def from_manifest(cls, model: dict, image: dict) -> Dims:
        """The dims a bundle was converted with, from its manifest's `model` and `image` sections."""
        names = ("image_tokens", "d_model", "encoder_layers", "decoder_layers", "heads", "head_dim", "vocab_size",
                 "max_positions", "prompt_len")
        return cls(image_size=image["height"], **{n: model[n] for n in names})


class VisionGraph(nn.Module):
    """pixel_values [1,3,H,W] -> image_features [1, image_tokens, d_model] (the tower run channels-last)."""

    def __init__(self, model):
        super().__init__()
        self.tower = ChannelsLastVision(model.model.vision_tower)
        self.projector = model.model.multi_modal_projector

    def forward(self, pixel_values):
        return {"image_features": self.projector(self.tower(pixel_values))}


class EncoderGraph(nn.Module):
    """Image features + padded prompt -> every decoder layer's cross-attention K and V.

    The token embedding lives here (and in the decoder), so the device never holds
    an fp32 embedding table. K/V come out per layer, each [1, heads, encoder_len,
    head_dim], so the decoder takes each as its own input and nothing is split per step.
    """

    def __init__(self, model, dims: Dims):
        super().__init__()
        lm = model.model.language_model
        self.embed = lm.get_input_embeddings()
        self.encoder = lm.encoder
        self.cross = nn.ModuleList(layer.encoder_attn for layer in lm.decoder.layers)
        self.dims = dims

    def forward(self, image_features, prompt_ids, prompt_mask):
        d = self.dims
        embeds = torch.cat([image_features, self.embed(prompt_ids)], dim=1)
        mask = torch.cat([torch.ones_like(prompt_mask[:, :1]).expand(1, d.image_tokens), prompt_mask], dim=1)
        hidden = self.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        out = {}
        for i, attn in enumerate(self.cross):
            out[f"cross_k_{i}"] = _heads(attn.k_proj(hidden), d)
            out[f"cross_v_{i}"] = _heads(attn.v_proj(hidden), d)
        return out


def _heads(x, d: Dims):
    return x.view(x.shape[0], x.shape[1], d.heads, d.head_dim).transpose(1, 2)


class DecoderLayers(nn.Module):
    """The checkpoint's decoder modules, shared by every decoder-step wrapper."""

    def __init__(self, model, dims: Dims):
        super().__init__()
        decoder = model.model.language_model.decoder
        self.embed = decoder.embed_tokens
        self.positions = decoder.embed_positions
        self.layernorm_embedding = decoder.layernorm_embedding
        self.layers = decoder.layers
        self.lm_head = model.lm_head
        self.dims = dims

    def position_embedding(self, position):
        return torch.index_select(self.positions.weight, 0, position + self.positions.offset)

    def cross_attend(self, layer, hidden, k, v, bias):
        """Cross-attention sub-layer (query per hypothesis, K/V shared) with its residual and norm."""
        d, attn = self.dims, layer.encoder_attn
        q = _heads(attn.q_proj(hidden) * attn.scaling, d)
        return layer.encoder_attn_layer_norm(hidden + attn.out_proj(_merge(self.attend_once(q, k, v, bias), d)))

    @staticmethod
    def attend_once(q, k, v, bias):
        """One query per head over K/V [1, heads, L, head_dim], as multiply-and-sum, not matmuls.

        XNNPACK repacks a matmul's non-constant right operand on every call; for one query
        row that repacking is the cost (base, 6 layers x 705 positions: 4.6 ms of a 7.3 ms
        step as matmuls, 2.2 ms as multiply-and-sum).
        """
        scores = (q * k).sum(dim=-1).unsqueeze(2) + bias  # [B, heads, 1, L]
        weights = torch.softmax(scores, dim=-1)
        return (weights.transpose(2, 3) * v).sum(dim=2, keepdim=True)

    @staticmethod
    def feed_forward(layer, hidden):
        return layer.final_layer_norm(hidden + layer.fc2(layer.activation_fn(layer.fc1(hidden))))


class DecoderStepGraph(DecoderLayers):
    """One decoder step for `batch` hypotheses over a self-attention cache of `cache` entries.

    Inputs: token_ids [B,1], position [1] (index of this token; cache entries at
    index >= position are ignored), cross_bias [1, encoder_len] (0 or MASKED),
    self_k_i [B, heads, head_dim, cache] (transposed, as the score matmul reads it),
    self_v_i [B, heads, cache, head_dim], and cross_k_i / cross_v_i [1, heads,
    encoder_len, head_dim] shared by all hypotheses.
    Outputs: logits [B, vocab] and new_k_i / new_v_i [B, heads, 1, head_dim], which
    the runtime writes into its cache at `position` (the graph never copies the cache).
    BART's post-layer-norm decoder layer, written out so the cache layout is ours.
    """

    def __init__(self, model, dims: Dims, cache: int):
        super().__init__(model, dims)
        self.cache = cache

    def forward(self, token_ids, position, cross_bias, **kv):
        d = self.dims
        hidden = self.layernorm_embedding(self.embed(token_ids) + self.position_embedding(position))
        keep = torch.arange(self.cache, dtype=position.dtype) < position
        self_bias = torch.where(keep, 0.0, MASKED).view(1, 1, 1, self.cache)
        cross_bias = cross_bias.view(1, 1, 1, -1)
        out = {}
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            q = _heads(attn.q_proj(hidden) * attn.scaling, d)
            k_new = _heads(attn.k_proj(hidden), d)
            v_new = _heads(attn.v_proj(hidden), d)
            ctx = _attend_with_cache(q, kv[f"self_k_{i}"], kv[f"self_v_{i}"], self_bias, k_new, v_new)
            hidden = layer.self_attn_layer_norm(hidden + attn.out_proj(_merge(ctx, d)))
            hidden = self.cross_attend(layer, hidden, kv[f"cross_k_{i}"], kv[f"cross_v_{i}"], cross_bias)
            hidden = self.feed_forward(layer, hidden)
            out[f"new_k_{i}"] = k_new
            out[f"new_v_{i}"] = v_new
        return {"logits": self.lm_head(hidden)[:, 0, :], **out}


def _attend_with_cache(q, k_cache, v_cache, cache_bias, k_new, v_new):
    # Scores against the cache and against the new token are kept apart so the
    # cache is only read, never concatenated (a concat would copy it every step).
    # The cache K is stored transposed ([B, heads, head_dim, cache]): no TRANSPOSE per step.
    s_cache = torch.matmul(q, k_cache) + cache_bias
    s_new = (q * k_new).sum(dim=-1, keepdim=True)
    weights = torch.softmax(torch.cat([s_cache, s_new], dim=-1), dim=-1)
    cache_len = k_cache.shape[3]
    return torch.matmul(weights[..., :cache_len], v_cache) + weights[..., cache_len:] * v_new


def _merge(ctx, d: Dims):
    return ctx.transpose(1, 2).reshape(ctx.shape[0], 1, d.heads * d.head_dim)


# ---- sample inputs (fixed shapes; never the same tensor object twice) ----

def vision_inputs(dims: Dims) -> dict:
    return {"pixel_values": torch.randn(1, 3, dims.image_size, dims.image_size)}


def encoder_inputs(dims: Dims) -> dict:
    return {
        "image_features": torch.randn(1, dims.image_tokens, dims.d_model),
        "prompt_ids": torch.zeros(1, dims.prompt_len, dtype=torch.int32),
        "prompt_mask": torch.ones(1, dims.prompt_len, dtype=torch.int32),
    }


def decoder_inputs(dims: Dims, batch: int, cache: int) -> dict:
    args = {
        "token_ids": torch.zeros(batch, 1, dtype=torch.int32),
        "position": torch.zeros(1, dtype=torch.int32),
        "cross_bias": torch.zeros(1, dims.encoder_len),
    }
    for i in range(dims.decoder_layers):
        args[f"self_k_{i}"] = torch.randn(batch, dims.heads, dims.head_dim, cache)
        args[f"self_v_{i}"] = torch.randn(batch, dims.heads, cache, dims.head_dim)
        for kind in ("k", "v"):
            args[f"cross_{kind}_{i}"] = torch.randn(1, dims.heads, dims.encoder_len, dims.head_dim)
    return args


# Tensors only graphs touch: the encoder writes them once per prompt, every decoder step
# reads them, the host never does.
GRAPH_ONLY_PREFIX = "cross_"


class FlatIO(nn.Module):
    """A graph with its host-side inputs and outputs flattened to 1-D; the real shapes go into the manifest.

    The runtime binds numpy memory zero-copy only as 1-D buffers, so every tensor the
    host reads or writes is flat. Graph-only tensors (`GRAPH_ONLY_PREFIX`) keep their
    shapes: XNNPACK turns the reshape of a flat input into a copy, and for the 26 MB
    of base cross-attention K/V that copy would cost every decoder step ~2.8 ms.
    """

    def __init__(self, graph: nn.Module, sample: dict):
        super().__init__()
        self.wrapped = graph  # not `graph`: torch.fx reserves that name
        self.input_shapes = {name: tuple(t.shape) for name, t in sample.items()}
        with torch.no_grad():
            self.output_shapes = {name: tuple(t.shape) for name, t in graph(**sample).items()}
        self.flat_sample = {name: _reshaped(name, t, (-1,)) for name, t in sample.items()}

    def forward(self, **flat):
        out = self.wrapped(**{name: _reshaped(name, t, self.input_shapes[name]) for name, t in flat.items()})
        return {name: _reshaped(name, t, (-1,)) for name, t in out.items()}


def _reshaped(name: str, tensor, shape):
    return tensor if name.startswith(GRAPH_ONLY_PREFIX) else tensor.reshape(shape)
