"""Text <-> token ids with the bundle's byte-level BPE tokenizer (`tokenizers`, exact)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edge.errors import FlorenceEdgeError

# Tokens that never belong in output text (transformers strips exactly these).
_STRIP = ("<s>", "</s>", "<pad>")


class TextCodec:
    def __init__(self, path: Path, special: dict):
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on a bad file
            raise FlorenceEdgeError(f"cannot load tokenizer {path}: {exc}") from None
        self.special = special

    def prompt_ids(self, prompt: str, lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """`<s> prompt </s>` padded to the shortest of the encoder's prompt `lengths` it fits, and its mask."""
        ids = self.tokenizer.encode(f"<s>{prompt}</s>", add_special_tokens=False).ids
        fitting = [n for n in sorted(lengths) if n >= len(ids)]
        if not fitting:
            raise FlorenceEdgeError(
                f"text input too long: the prompt is {len(ids)} tokens, this bundle takes at most {max(lengths)}"
            )
        length = fitting[0]
        out = np.full((1, length), self.special["pad"], dtype=np.int32)
        out[0, : len(ids)] = ids
        mask = np.zeros((1, length), dtype=np.int32)
        mask[0, : len(ids)] = 1
        return out, mask

    def decode(self, ids: list[int]) -> str:
        """Text with every token kept, `<loc_N>` included, as transformers' decode(skip_special_tokens=False)."""
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def output_text(self, ids: list[int]) -> str:
        text = self.decode(ids)
        for tok in _STRIP:
            text = text.replace(tok, "")
        return text

    def streamer(self) -> _Streamer:
        return _Streamer(self)


class _Streamer:
    """Turns tokens into text pieces, holding back bytes that don't yet form a character.

    Only a short window of recent tokens is decoded per token (the last emitted
    piece, for context, plus what is new), so streaming stays O(1) per token.
    """

    def __init__(self, codec: TextCodec):
        self.codec = codec
        self.ids: list[int] = []
        self.start = 0  # window start: the tokens of the previous piece
        self.done = 0  # tokens already emitted

    def push(self, token: int) -> str:
        self.ids.append(token)
        before = self.codec.output_text(self.ids[self.start:self.done])
        text = self.codec.output_text(self.ids[self.start:])
        if text.endswith("\ufffd") or len(text) <= len(before):
            return ""
        self.start, self.done = self.done, len(self.ids)
        return text[len(before):]
