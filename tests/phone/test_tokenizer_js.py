"""edge/phone/tokenizer.js against `tokenizers` (what edge/text.py uses): token for token on
thousands of generated strings, with a byte-level BPE of 4,000 merges trained here and Florence-2's
added tokens (the demo's and a published checkpoint's tokenizer.json have the same shape)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from converters.florence2_vocab import FLORENCE2_ADDED_TOKENS
from edge.text import TextCodec

DRIVE = Path(__file__).with_name("drive.mjs")
PIECES = ["the", " red", " square", "circle", "Ünïcödé", "日本語の文", "emoji 🙂👍🏽", "  ", "\t", "\n", "\r\n",
          "\u0085", "\u00a0", "\u3000", "\ufeff", "'s", "'ll", "'re", "123", "4.5", "$%&", "<", ">", "</",
          "<loc_", "<loc_12>", "<s>", "</s>", "<pad>", "<poly>", "<sep>", "café", "Ωmega", "x\u0301", "ﬁ",
          "\U0001f3f3\ufe0f\u200d\U0001f308", "\x00", "\x7f", "a" * 40]


def node(job: str, cases: dict) -> dict:
    done = subprocess.run([shutil.which("node") or "node", str(DRIVE), job], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _text(rng: random.Random) -> str:
    # Code points outside the Basic Multilingual Plane come from the emoji blocks: letters assigned in
    # recent Unicode versions (Tangut supplements, U+18D80 on) are letters to the browser's regular
    # expressions but not yet to the Oniguruma inside `tokenizers`.
    return "".join(rng.choice(PIECES) if rng.random() < 0.4 else chr(rng.choice(
        [rng.randrange(32, 127), rng.randrange(128, 0x800), rng.randrange(0x800, 0xd800),
         rng.randrange(0x1f300, 0x1faff), rng.randrange(0, 32)])) for _ in range(rng.randrange(0, 30)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = random.Random(0)
    corpus = [_text(rng) for _ in range(3000)] + ["a red circle and a blue square on the left"] * 50
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    trainer = trainers.BpeTrainer(vocab_size=4300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.add_special_tokens(list(FLORENCE2_ADDED_TOKENS))
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_tokens_and_text_are_the_python_runtimes(trained):
    reference = Tokenizer.from_file(str(trained))
    rng = random.Random(1)
    texts = [_text(rng) for _ in range(3000)]
    vocab = reference.get_vocab_size()
    sequences = [[rng.randrange(vocab) for _ in range(rng.randrange(1, 25))] for _ in range(1000)]
    got = node("tokenize", {"tokenizer": json.loads(trained.read_text()), "texts": texts, "sequences": sequences})
    for text, ids in zip(texts, got["encoded"]):
        assert ids == reference.encode(text, add_special_tokens=False).ids, repr(text)
    codec = TextCodec(trained, {})
    for ids, text, streamed in zip(sequences, got["decoded"], got["streamed"]):
        assert text == codec.decode(ids), ids
        streamer = codec.streamer()
        assert streamed == "".join(streamer.push(i) for i in ids), ids
    assert len(reference.get_vocab()) > 4000 + len(FLORENCE2_ADDED_TOKENS) - 1


def test_the_demo_bundles_tokenizer(demo_int8_bundle):
    path = Path(demo_int8_bundle[0]) / "tokenizer.json"
    prompts = ["<s>What does the image describe?</s>", "<s>Locate the phrases in the caption: a red circle</s>",
               "<s>What is the region <loc_100><loc_200><loc_600><loc_700>?</s>"]
    got = node("tokenize", {"tokenizer": json.loads(path.read_text()), "texts": prompts, "sequences": []})
    reference = Tokenizer.from_file(str(path))
    assert got["encoded"] == [reference.encode(p, add_special_tokens=False).ids for p in prompts]
