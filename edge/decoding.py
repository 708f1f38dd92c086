"""Greedy and beam search over a one-token decoder step, as transformers' `generate()` does.

The model is reached only through a `Stepper` (run one step for every live
hypothesis, reorder the self-attention cache), so this module is pure numpy and
is tested against `generate()` token for token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

_NEG = -1.0e9  # transformers' "impossible" score for beams and finished slots


@dataclass(frozen=True)
class DecodeSettings:
    max_new_tokens: int
    num_beams: int
    no_repeat_ngram_size: int
    decoder_start_id: int
    eos_id: int
    forced_bos_id: int | None
    forced_eos_id: int | None
    early_stopping: bool = True
    length_penalty: float = 1.0

    @property
    def max_length(self) -> int:
        # The decoder start token counts toward the length, as in generate().
        return self.max_new_tokens + 1


class Stepper(Protocol):
    def step(self, tokens: np.ndarray, position: int) -> np.ndarray:
        """Feed one token per hypothesis at `position`; return logits [hypotheses, vocab]."""

    def reorder(self, source: np.ndarray, length: int) -> None:
        """Hypothesis i continues hypothesis source[i]: copy cache entries [0, length)."""


def process_scores(scores: np.ndarray, sequences: np.ndarray, s: DecodeSettings) -> np.ndarray:
    """No-repeat n-gram, forced BOS, forced EOS, in generate()'s order; in place."""
    cur_len = sequences.shape[1]
    n = s.no_repeat_ngram_size
    if n > 0 and cur_len + 1 >= n:
        for row, seq in enumerate(sequences):
            scores[row, _banned_ngram_tokens(seq, n)] = -np.inf
    if s.forced_bos_id is not None and cur_len == 1:
        _force(scores, s.forced_bos_id)
    if s.forced_eos_id is not None and cur_len == s.max_length - 1:
        _force(scores, s.forced_eos_id)
    return scores


def _banned_ngram_tokens(seq: np.ndarray, n: int) -> np.ndarray:
    """Tokens that followed the last n-1 tokens earlier in `seq` (vectorised: this runs every step)."""
    length = len(seq)
    hits = np.ones(length - n + 1, dtype=bool)
    for k in range(n - 1):
        hits &= seq[k:length - n + 1 + k] == seq[length - n + 1 + k]
    return seq[n - 1:][hits]


def _force(scores: np.ndarray, token: int) -> None:
    scores[:] = -np.inf
    scores[:, token] = 0.0


def greedy(stepper: Stepper, s: DecodeSettings) -> Iterator[int]:
    """Yield each new token as it is chosen; the last one is EOS unless the limit cut it."""
    seq = np.array([[s.decoder_start_id]], dtype=np.int64)
    while seq.shape[1] < s.max_length:
        logits = stepper.step(seq[:, -1], seq.shape[1] - 1).astype(np.float32, copy=True)
        token = int(np.argmax(process_scores(logits, seq, s)[0]))
        seq = np.concatenate([seq, [[token]]], axis=1)
        yield token
        if token == s.eos_id:
            return


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _top(values: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-values, kind="stable")[:k]


def beam_search(stepper: Stepper, s: DecodeSettings) -> Iterator[int]:
    """Yield the best hypothesis' tokens by generate()'s beam-search rules, each as soon as it is certain.

    Finished hypotheses are scored sum(log p) / length ** length_penalty; with
    early_stopping, search ends once `num_beams` hypotheses are finished. A token is
    certain once every live beam and every finished hypothesis shares it, since the
    answer can only come from those.
    """
    k = s.num_beams
    keep = 2 * k  # one EOS token: enough candidates that k can always continue
    running = np.full((k, 1), s.decoder_start_id, dtype=np.int64)
    running_scores = np.full(k, _NEG, dtype=np.float32)
    running_scores[0] = 0.0
    finished: list[tuple[float, list[int]]] = []
    improvable = True
    emitted = 0
    while True:
        cur_len = running.shape[1]
        logits = stepper.step(running[:, -1], cur_len - 1).astype(np.float32)
        log_probs = process_scores(_log_softmax(logits), running, s)
        vocab = log_probs.shape[1]
        total = (log_probs + running_scores[:, None]).reshape(-1)
        cand = _top(total, keep)
        cand_scores, cand_beam, cand_token = total[cand], cand // vocab, cand % vocab
        hits = (cand_token == s.eos_id) | (cur_len + 1 >= s.max_length)

        full = len(finished) == k and s.early_stopping
        if improvable and not full:
            for rank in np.flatnonzero(hits[:k] & (cand_scores[:k] > _NEG)):
                # Length of the hypothesis without the decoder start token.
                score = float(cand_scores[rank]) / (cur_len ** s.length_penalty)
                tokens = running[cand_beam[rank]].tolist()[1:] + [int(cand_token[rank])]
                finished = _best(finished + [(score, tokens)], k)

        alive = _top(cand_scores + hits * _NEG, k)
        source = cand_beam[alive]
        running = np.concatenate([running[source], cand_token[alive, None]], axis=1)
        running_scores = (cand_scores + hits * _NEG)[alive].astype(np.float32)
        settled = _common_prefix([row[1:].tolist() for row in running] + [f[1] for f in finished])
        yield from settled[emitted:]
        emitted = max(emitted, len(settled))
        if np.all(hits):
            break
        stepper.reorder(source, cur_len)
        improvable = improvable and _can_improve(running_scores, finished, k, running.shape[1], s)
        if not improvable or (len(finished) == k and s.early_stopping):
            break
    yield from finished[0][1][emitted:]


def _common_prefix(seqs: list[list[int]]) -> list[int]:
    prefix = seqs[0]
    for seq in seqs[1:]:
        n = 0
        while n < min(len(prefix), len(seq)) and prefix[n] == seq[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _best(finished: list, k: int) -> list:
    return sorted(finished, key=lambda f: -f[0])[:k]


def _can_improve(running_scores, finished, k, cur_len, s: DecodeSettings) -> bool:
    if len(finished) < k:
        return True
    best_running = float(running_scores[0]) / ((cur_len - 1) ** s.length_penalty)
    return best_running > min(f[0] for f in finished)
