"""Session fixtures: one tiny random checkpoint and its fp32, int8 and int4 bundles; the demo model's.

Conversion is the slow part (~30 s a bundle), so each bundle is built once and
shared; tests that alter a bundle copy it first.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

# No test may reach the network: a hub id must fail fast, not retry for 30 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A shell without job control starts background commands with SIGINT ignored, and an ignored signal
# stays ignored across exec: every command the tests Ctrl-C would then run on. Handled here, it is
# reset to the default in each child, as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Packed-weight caches go to a throwaway folder, not the user's ~/.cache, removed at the end.
os.environ["FLORENCE_EDGE_CACHE"] = tempfile.mkdtemp(prefix="florence-edge-cache-")


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(os.environ["FLORENCE_EDGE_CACHE"], ignore_errors=True)

TINY_CONVERT = dict(caches=(16, 64), beams=3, prompt_lens=(16, 32), verify_tokens=24)
# The trained demo model: buckets that cover its longest answers, one prompt bucket.
DEMO = Path(__file__).resolve().parents[1] / "models" / "florence2-shapes"
DEMO_CONVERT = dict(caches=(64, 256), beams=3, prompt_lens=(64,), verify_tokens=24)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from converters.test_checkpoints import write_test_checkpoint

    return write_test_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny", seed=0)


def _convert(tmp_path_factory, checkpoint, quant):
    from converters.convert import convert

    out = tmp_path_factory.mktemp(quant) / "bundle"
    manifest = convert(str(checkpoint), out, quant=quant, **TINY_CONVERT)
    return out, manifest


@pytest.fixture(scope="session")
def fp32_bundle(tmp_path_factory, tiny_checkpoint):
    return _convert(tmp_path_factory, tiny_checkpoint, "fp32")


@pytest.fixture(scope="session")
def int8_bundle(tmp_path_factory, tiny_checkpoint):
    return _convert(tmp_path_factory, tiny_checkpoint, "int8")


@pytest.fixture(scope="session")
def int4_bundle(tmp_path_factory, tiny_checkpoint):
    return _convert(tmp_path_factory, tiny_checkpoint, "int4")


@pytest.fixture(scope="session")
def tiny_source(tiny_checkpoint):
    from converters.source import load_source

    return load_source(str(tiny_checkpoint))


@pytest.fixture
def bundle_copy(fp32_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(fp32_bundle[0], path)
    return path


@pytest.fixture
def demo_copy(demo_int8_bundle, tmp_path):
    """A copy of the demo int8 bundle a test may damage."""
    path = tmp_path / "demo-bundle"
    shutil.copytree(demo_int8_bundle[0], path)
    return path


def _convert_demo(tmp_path_factory, quant):
    from converters.convert import convert

    out = tmp_path_factory.mktemp(f"demo-{quant}") / "bundle"
    return out, convert(str(DEMO), out, quant=quant, **DEMO_CONVERT)


@pytest.fixture(scope="session")
def demo_fp32_bundle(tmp_path_factory):
    return _convert_demo(tmp_path_factory, "fp32")


@pytest.fixture(scope="session")
def demo_int8_bundle(tmp_path_factory):
    return _convert_demo(tmp_path_factory, "int8")


@pytest.fixture(scope="session")
def demo_int8_static_bundle(tmp_path_factory):
    return _convert_demo(tmp_path_factory, "int8-static")


@pytest.fixture(scope="session")
def demo_int4_bundle(tmp_path_factory):
    return _convert_demo(tmp_path_factory, "int4")


@pytest.fixture(scope="session")
def vocab(tiny_source, fp32_bundle):
    from edge.text import TextCodec

    tok = tiny_source.processor.tokenizer
    ids = tok.convert_tokens_to_ids
    loc0 = ids("<loc_0>")
    words = [tok.encode(w, add_special_tokens=False) for w in
             ["a red circle", " and", " the", " blue square", " it", " HELLO", " car", " é", "\n", " 42", " <"]]
    return {
        "tok": tok, "processor": tiny_source.processor, "loc0": loc0, "words": words,
        "struct": [ids(t) for t in ["<poly>", "</poly>", "<sep>", "<s>", "</s>", "<pad>", "<od>", "</od>", "<and>"]],
        "codec": TextCodec(fp32_bundle[0] / "tokenizer.json", {"pad": 1}),
        "config": tiny_source.processor.post_processor_config,
    }


@pytest.fixture(scope="session")
def token_atoms(vocab):
    """A hypothesis strategy for pieces of model output: words, location runs, structural tokens, polygons."""
    from hypothesis import strategies as st

    loc = st.integers(0, 999).map(lambda b: [vocab["loc0"] + b])
    boxes = st.lists(loc, min_size=1, max_size=9).map(lambda xs: sum(xs, []))
    word = st.sampled_from(vocab["words"])
    struct = st.sampled_from(vocab["struct"]).map(lambda t: [t])
    poly = st.tuples(st.lists(loc, min_size=1, max_size=9), st.booleans()).map(
        lambda p: [vocab["struct"][0]] + sum(p[0], []) + ([vocab["struct"][1]] if p[1] else []))
    return st.one_of(word, word, boxes, boxes, struct, poly)
