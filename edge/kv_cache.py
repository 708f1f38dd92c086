"""The decoder's self-attention cache, kept inside the graph's own input buffers.

Each step writes only the new K/V slice at its position; the cache is never copied
whole except when beam search reorders hypotheses (and then only the filled part)
or when a sequence outgrows its cache bucket (once per bucket it passes).
"""

from __future__ import annotations

import numpy as np

from edge.runtime import Signature

# Additive attention bias for positions that must not be attended (exp() of it is 0 in fp32);
# the converter's graphs use the same value.
MASKED = -1e9


def cross_bias(image_tokens: int, prompt_mask: np.ndarray) -> np.ndarray:
    """[1, image_tokens + prompt_len]: 0 for image tokens and real prompt tokens, MASKED for padding."""
    return np.concatenate([np.zeros((1, image_tokens), np.float32),
                           np.where(prompt_mask > 0, 0.0, MASKED).astype(np.float32)], axis=1)


def _copy(target, source) -> None:
    # The compiled runtime binds the encoder's outputs as the decoder's inputs: one tensor.
    if target is not source:
        target[...] = source


def _by_position(name: str, tensor: np.ndarray) -> np.ndarray:
    """A cache tensor as [batch, heads, position, head_dim]: the graphs store K transposed
    ([batch, heads, head_dim, position]) so a step's score matmul needs no TRANSPOSE."""
    return tensor.transpose(0, 1, 3, 2) if name.startswith("self_k_") else tensor


class DecoderSession:
    """One decoder signature (batch, cache size) used as a `decoding.Stepper`."""

    def __init__(self, signature: Signature, layers: int, image_tokens: int):
        self.sig = signature
        self.image_tokens = image_tokens
        names = [f"self_{kind}_{i}" for i in range(layers) for kind in ("k", "v")]
        self._cache = [_by_position(n, signature.inputs[n]) for n in names]  # views: writes reach the graph
        self.size = self._cache[0].shape[2]
        self._new = [signature.outputs[n.replace("self_", "new_")] for n in names]
        self._tokens = signature.inputs["token_ids"]
        self._position = signature.inputs["position"]
        # Fresh tensor memory is whatever the allocator had: NaN or 1e30 there would
        # survive the additive mask (0 * NaN, 1e30 - 1e9). Entries left by earlier
        # prompts are finite K/V and the mask removes them.
        for cache in self._cache:
            cache[...] = 0.0

    def start(self, cross: dict[str, np.ndarray], prompt_mask: np.ndarray) -> None:
        """Load one prompt's cross-attention K/V (shared by every hypothesis)."""
        for name, value in cross.items():
            _copy(self.sig.inputs[name], value)
        self.sig.inputs["cross_bias"][...] = cross_bias(self.image_tokens, prompt_mask)

    def take_over(self, other: DecoderSession, length: int) -> None:
        """Continue `other`'s sequence: its prompt K/V and its first `length` cache entries."""
        for name, view in self.sig.inputs.items():
            if name.startswith("cross_"):
                _copy(view, other.sig.inputs[name])
        for mine, theirs in zip(self._cache, other._cache):
            mine[:, :, :length] = theirs[:, :, :length]

    def step(self, tokens: np.ndarray, position: int) -> np.ndarray:
        self._tokens[:, 0] = tokens
        self._position[0] = position
        self.sig.invoke()
        for cache, new in zip(self._cache, self._new):
            cache[:, :, position] = new[:, :, 0]
        return self.sig.outputs["logits"]

    def reorder(self, source: np.ndarray, length: int) -> None:
        if np.array_equal(source, np.arange(len(source))):
            return
        for cache in self._cache:
            cache[:, :, :length] = cache[source, :, :length]


class GrowingDecoder:
    """A `decoding.Stepper` over one batch size's cache buckets, smallest first.

    A step costs what its cache size costs, not its position, so a sequence starts
    in the smallest bucket and moves to the next only when it fills it: short
    outputs never pay for the 1024-entry cache that `max_new_tokens` may allow.
    """

    def __init__(self, sessions: list):
        self.sessions = sessions  # callables returning DecoderSession, by increasing cache size
        self.current = None
        self.index = 0

    def start(self, cross: dict[str, np.ndarray], prompt_mask: np.ndarray) -> None:
        self.index = 0
        self.current = self.sessions[0]()
        self.current.start(cross, prompt_mask)

    def step(self, tokens: np.ndarray, position: int) -> np.ndarray:
        while position >= self.current.size:
            bigger = self.sessions[self.index + 1]()
            bigger.take_over(self.current, position)
            self.current, self.index = bigger, self.index + 1
        return self.current.step(tokens, position)

    def reorder(self, source: np.ndarray, length: int) -> None:
        self.current.reorder(source, length)
