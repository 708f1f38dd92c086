"""The decoder's self-attention cache, kept inside the graph's own input buffers.

Each step writes only the new K/V slice at its position; the cache is never copied
whole except when beam search reorders hypotheses (and then only the filled part).
"""

from __future__ import annotations

import numpy as np

from edge.runtime import Signature

# Additive bias for padded prompt positions in cross-attention (see converters.graphs.MASKED).
MASKED = -1e9


class DecoderSession:
    """One decoder signature (batch, cache size) used as a `decoding.Stepper`."""

    def __init__(self, signature: Signature, layers: int, image_tokens: int):
        self.sig = signature
        self.image_tokens = image_tokens
        names = [f"self_{kind}_{i}" for i in range(layers) for kind in ("k", "v")]
        self._cache = [signature.inputs[n] for n in names]
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
            self.sig.inputs[name][...] = value
        bias = self.sig.inputs["cross_bias"]
        bias[:, : self.image_tokens] = 0.0
        bias[:, self.image_tokens:] = np.where(prompt_mask > 0, 0.0, MASKED)

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
