"""How sure the decoder was: a score per answer and per shape, from its own token probabilities.

Florence-2 emits no scores; its decoder's logits are computed at every step anyway, and
`edge.decoding` keeps each chosen token's probability (`Choice`). From them:

- a text answer's score is the geometric mean of its tokens' probabilities (EOS included: where
  the answer stops is a choice too);
- a shape's score (box, OCR quad, polygon) is the probability of its label times the geometric
  mean of its location tokens' `near` probabilities. The label's probability is the product of
  its tokens' (the chance the model names this thing here at all, which is what separates a real
  object from an invented one); a location counts with the probability of the bins within
  `LOC_WINDOW` of it (one bin off is the same corner), so a box the model places sharply scores
  near 1 and one it guesses scores low. Consecutive shapes that share a label share its
  probability, as the parser gives them the same label.

Shapes are found in the tokens by their coordinates: the parser (transformers' rules) decides what
is a shape; this module only looks up which tokens made each one.
"""

from __future__ import annotations

import math

import numpy as np

from edge.decoding import Choice
from edge.postprocess import dequantize

# The parsed answer's shape lists, each scored element for element.
SHAPE_KEYS = ("bboxes", "quad_boxes", "polygons")


def answer_score(choices: list[Choice]) -> float:
    """Geometric mean of the tokens' probabilities (1.0 for an answer of forced tokens only)."""
    free = [c.logprob for c in choices if c.logprob != 0.0]
    return round(math.exp(sum(free) / len(free)), 4) if free else 1.0


def shape_scores(answer, choices: list[Choice], loc_ids: tuple[int, int], size: tuple[int, int],
                 skip: frozenset[int] = frozenset()) -> dict:
    """{key: [score per element]} for each shape list in a parsed answer (a polygon instance, a
    list of polygons, gets one score); `skip`: token ids that belong to no label (BOS, EOS, pad)."""
    if not isinstance(answer, dict):
        return {}
    finder = _Finder(choices, loc_ids, size, skip)
    out = {}
    for key in SHAPE_KEYS:
        if answer.get(key):
            if key == "polygons":
                out[key] = [_combined(finder, polys) for polys in answer[key]]
            else:
                out[key] = [_combined(finder, [shape]) for shape in answer[key]]
    return out


def _combined(finder: _Finder, parts: list) -> float:
    """One score for one element made of `parts` (coordinate lists found one after another)."""
    label, nears = 0.0, []
    for i, coords in enumerate(parts):
        found = finder.find(coords)
        if found is None:
            return 0.0  # cannot happen for the parser's own output; a score of 0 says "unknown"
        part_label, part_nears = found
        label = part_label if i == 0 else label
        nears += part_nears
    mean_near = sum(nears) / len(nears) if nears else 0.0
    return round(math.exp(label + mean_near), 4)


class _Finder:
    """Walks the tokens once, left to right, finding each shape's location tokens by their pixels."""

    def __init__(self, choices: list[Choice], loc_ids: tuple[int, int], size, skip: frozenset[int]):
        self.choices = choices
        first, last = loc_ids
        tokens = np.array([c.token for c in choices], dtype=np.int64)
        self.is_loc = (tokens >= first) & (tokens <= last)
        bins = np.where(self.is_loc, tokens - first, 0)
        # Each token's pixel value read as an x and as a y: a shape's run alternates from its start.
        pairs = np.stack([bins, bins], axis=1).ravel()
        pixels = np.asarray(dequantize(pairs, size)).reshape(-1, 2)
        self.as_x, self.as_y = pixels[:, 0], pixels[:, 1]
        self.skip = skip
        self.at = 0  # the next token to look from
        self.label = 0.0  # log-probability of the label of the last shape found

    def find(self, coords) -> tuple[float, list[float]] | None:
        """(label log-probability, location tokens' near log-probabilities) of the next run of location
        tokens after `self.at` whose pixels are `coords`."""
        n = len(coords)
        want = np.asarray(coords)
        for start in range(self.at, len(self.choices) - n + 1):
            span = slice(start, start + n)
            if not self.is_loc[span].all():
                continue
            if (self.as_x[span][0::2] == want[0::2]).all() and (self.as_y[span][1::2] == want[1::2]).all():
                if start == 0 or not self.is_loc[start - 1]:
                    self.label = self._label_before(start)
                self.at = start + n
                return self.label, [c.near for c in self.choices[span]]
        return None

    def _label_before(self, start: int) -> float:
        """Sum of log-probabilities of the tokens since the previous location token."""
        begin = start
        while begin > 0 and not self.is_loc[begin - 1]:
            begin -= 1
        return sum(c.logprob for c in self.choices[begin:start] if c.token not in self.skip)
