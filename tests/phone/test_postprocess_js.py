"""edge/phone/postprocess.js against edge/postprocess.py (itself equal to transformers' processor):
every post-processing type on thousands of generated answers, well- and badly-formed."""

from __future__ import annotations

import random

from test_tokenizer_js import node

from edge.postprocess import KINDS, parse

WORDS = ["a red circle", " and", "the", " blue square", "it", "HELLO", " car", " é", "日本", "\n", " 42", "<",
         "\u0085x\u0085", "\x1c", "\ufeff", "\u2028", "  ", "\t", "a\u00a0b", "🙂", "<ground>", "<obj>", "<and>"]
STRUCT = ["<poly>", "</poly>", "<sep>", "<s>", "</s>", "<pad>", "<od>", "</od>", "<box>", "</box>"]
CONFIG = {"phrase_grounding": {"banned_grounding_tokens": ["it", "the image", "a"]},
          "ocr": {"pattern": "ignored: lower case"}}


def _answer(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randrange(0, 14)):
        pick = rng.random()
        if pick < 0.35:
            pieces.append(rng.choice(WORDS))
        elif pick < 0.7:
            pieces.append("".join(f"<loc_{rng.randrange(1000)}>" for _ in range(rng.randrange(1, 10))))
        elif pick < 0.85:
            pieces.append(rng.choice(STRUCT))
        else:
            locs = "".join(f"<loc_{rng.randrange(1000)}>" for _ in range(rng.randrange(1, 10)))
            pieces.append("<poly>" + locs + ("</poly>" if rng.random() < 0.5 else ""))
    return "".join(pieces)


def test_answers_are_the_python_parsers():
    rng = random.Random(0)
    cases = []
    for _ in range(3000):
        text, size = _answer(rng), [rng.randrange(1, 4000), rng.randrange(1, 4000)]
        cases += [{"text": text, "task": "<T>", "kind": kind, "size": size, "config": CONFIG} for kind in KINDS]
    got = node("parse", {"cases": cases})
    for case, answer in zip(cases, got):
        expected = parse(case["text"], case["task"], case["kind"], tuple(case["size"]), CONFIG)
        assert answer == expected, case
    assert node("parse", {"cases": [dict(cases[0], kind="made_up")]}) == [
        {"error": 'unknown post-processing type "made_up"'}]
