"""Greedy and beam search over a one-token decoder step, as transformers' `generate()` does.

The model is reached only through a `Stepper` (run one step for every live
hypothesis, reorder the self-attention cache), so this module is pure numpy and
is tested against `generate()` token for token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

_NEG = -1.0e9  # transformers' "impossible" score for beams and finished slots
# Bins either side of a chosen `<loc_N>` whose probability counts toward its `near` mass: a box
# corner one bin off is the same corner, so a location is as certain as its neighbourhood is.
LOC_WINDOW = 5
# Logits this far below the largest are left out of a probability's denominator: each adds under
# e^-20 of the largest term, all of a 51k vocabulary under 1e-4 of the sum, and skipping them keeps
# scoring off the streaming path's bill (exp over the whole vocabulary cost more than a demo step).
_TAIL = 20.0


class Choice(NamedTuple):
    """A decoded token and what the model thought of it (natural logs, from the raw logits, before
    the no-repeat and forced-token rules): `logprob` of the token itself; `near`, for a `<loc_N>`,
    of the bins within LOC_WINDOW of it, else `logprob` again. A forced token has 0.0 (certain)."""

    token: int
    logprob: float
    near: float


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
    loc_ids: tuple[int, int] | None = None  # first and last `<loc_N>` id, for `Choice.near`

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


def greedy(stepper: Stepper, s: DecodeSettings) -> Iterator[Choice]:
    """Yield each new token as it is chosen; the last one is EOS unless the limit cut it.

    The same choice as the argmax of `process_scores`, without copying the vocabulary's logits on
    the steps where no rule applies: a token that is the raw argmax and not banned is that argmax."""
    seq = np.array([[s.decoder_start_id]], dtype=np.int64)
    while seq.shape[1] < s.max_length:
        raw = stepper.step(seq[:, -1], seq.shape[1] - 1)[0]
        cur_len = seq.shape[1]
        if _forced(cur_len, s):
            at_limit = s.forced_eos_id is not None and cur_len == s.max_length - 1  # EOS wins, as in process_scores
            token = s.forced_eos_id if at_limit else s.forced_bos_id
            choice = Choice(token, 0.0, 0.0)
        else:
            token = int(np.argmax(raw))
            top = raw[token]
            banned = _banned_ngram_tokens(seq[0], s.no_repeat_ngram_size) if (
                s.no_repeat_ngram_size > 0 and cur_len + 1 >= s.no_repeat_ngram_size) else ()
            if token in banned:
                masked = raw.astype(np.float32, copy=True)
                masked[banned] = -np.inf
                token = int(np.argmax(masked))
            choice = _choice(raw, token, top, s)
        seq = np.concatenate([seq, [[token]]], axis=1)
        yield choice
        if token == s.eos_id:
            return


def _forced(cur_len: int, s: DecodeSettings) -> bool:
    """Whether the token chosen at sequence length `cur_len` was forced (BOS first, EOS at the limit)."""
    return (s.forced_bos_id is not None and cur_len == 1) or (s.forced_eos_id is not None
                                                            and cur_len == s.max_length - 1)


def _choice(raw: np.ndarray, token: int, top: float, s: DecodeSettings) -> Choice:
    """`token`'s Choice from one hypothesis' raw logits, whose largest is `top`."""
    head = raw[raw > top - _TAIL]
    return _scored(raw, token, float(top + np.log(np.exp(head - top).sum())), s)


def _scored(raw: np.ndarray, token: int, lse: float, s: DecodeSettings) -> Choice:
    """The Choice of `token` given its hypothesis' raw logits and their log-sum-exp."""
    logprob = float(raw[token] - lse)
    if s.loc_ids is None or not s.loc_ids[0] <= token <= s.loc_ids[1]:
        return Choice(token, logprob, logprob)
    first, last = s.loc_ids
    window = raw[max(first, token - LOC_WINDOW): min(last, token + LOC_WINDOW) + 1]
    return Choice(token, logprob, float(np.log(np.exp(window - lse).sum())))


def _top(values: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-values, kind="stable")[:k]


def beam_search(stepper: Stepper, s: DecodeSettings) -> Iterator[Choice]:
    """Yield the best hypothesis' tokens by generate()'s beam-search rules, each as soon as it is certain.

    Finished hypotheses are scored sum(log p) / length ** length_penalty; with
    early_stopping, search ends once `num_beams` hypotheses are finished. A token is
    certain once every live beam and every finished hypothesis shares it, since the
    answer can only come from those (and so do its probabilities: a shared prefix was
    decoded from the same states).
    """
    k = s.num_beams
    keep = 2 * k  # one EOS token: enough candidates that k can always continue
    running = np.full((k, 1), s.decoder_start_id, dtype=np.int64)
    choices: list[list[Choice]] = [[] for _ in range(k)]
    running_scores = np.full(k, _NEG, dtype=np.float32)
    running_scores[0] = 0.0
    finished: list[tuple[float, list[Choice]]] = []
    improvable = True
    emitted = 0
    while True:
        cur_len = running.shape[1]
        logits = stepper.step(running[:, -1], cur_len - 1).astype(np.float32)
        lse = _logsumexp(logits)
        log_probs = process_scores(logits - lse[:, None], running, s)
        vocab = log_probs.shape[1]
        total = (log_probs + running_scores[:, None]).reshape(-1)
        cand = _top(total, keep)
        cand_scores, cand_beam, cand_token = total[cand], cand // vocab, cand % vocab
        hits = (cand_token == s.eos_id) | (cur_len + 1 >= s.max_length)

        def chosen(rank, beams=cand_beam, tokens=cand_token, logits=logits, lse=lse, before=choices, length=cur_len):
            return _extended(before[beams[rank]], int(tokens[rank]), logits[beams[rank]], lse[beams[rank]], length, s)

        full = len(finished) == k and s.early_stopping
        if improvable and not full:
            for rank in np.flatnonzero(hits[:k] & (cand_scores[:k] > _NEG)):
                # Length of the hypothesis without the decoder start token.
                score = float(cand_scores[rank]) / (cur_len ** s.length_penalty)
                finished = _best(finished + [(score, chosen(rank))], k)

        alive = _top(cand_scores + hits * _NEG, k)
        source = cand_beam[alive]
        running = np.concatenate([running[source], cand_token[alive, None]], axis=1)
        choices = [chosen(rank) for rank in alive]
        running_scores = (cand_scores + hits * _NEG)[alive].astype(np.float32)
        settled = _common_prefix([row[1:].tolist() for row in running] + [[c.token for c in f[1]] for f in finished])
        yield from choices[0][emitted:len(settled)]
        emitted = max(emitted, len(settled))
        if np.all(hits):
            break
        stepper.reorder(source, cur_len)
        improvable = improvable and _can_improve(running_scores, finished, k, running.shape[1], s)
        if not improvable or (len(finished) == k and s.early_stopping):
            break
    yield from finished[0][1][emitted:]


def _extended(before: list[Choice], token: int, raw: np.ndarray, lse: float, cur_len: int,
              s: DecodeSettings) -> list[Choice]:
    """A hypothesis' choices with `token` appended."""
    return before + [Choice(token, 0.0, 0.0) if _forced(cur_len, s) else _scored(raw, token, lse, s)]


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=-1)
    return top + np.log(np.exp(x - top[:, None]).sum(axis=-1))


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
