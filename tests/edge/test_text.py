import pytest

from edge.errors import FlorenceEdgeError
from edge.manifest import load_manifest
from edge.text import TextCodec


@pytest.fixture(scope="module")
def codec(fp32_bundle):
    return TextCodec(fp32_bundle[0] / "tokenizer.json", load_manifest(fp32_bundle[0]).tokens)


def test_streamed_pieces_are_whole_characters_and_add_up(codec):
    text = "a red café 日本 <loc_5>cat<poly><loc_1></poly> 🚗!"
    ids = codec.tokenizer.encode(text, add_special_tokens=False).ids
    streamer = codec.streamer()
    pieces = [streamer.push(i) for i in ids]
    assert "".join(pieces) == codec.output_text(ids) == text
    assert all("\ufffd" not in p for p in pieces)
    assert sum(1 for p in pieces if p) > 10


def test_prompt_is_padded_to_the_shortest_length_it_fits_and_masked(codec):
    ids, mask = codec.prompt_ids("What does the image describe?", [32, 12])
    n = int(mask.sum())
    assert ids[0, 0] == codec.special["bos"] and ids[0, n - 1] == codec.special["eos"]
    assert (ids[0, n:] == codec.special["pad"]).all() and ids.shape == mask.shape == (1, 12)
    longer, _ = codec.prompt_ids("What does the image describe? " * 2, [12, 32])
    assert longer.shape == (1, 32)
    with pytest.raises(FlorenceEdgeError, match="at most 32"):
        codec.prompt_ids("word " * 40, [12, 32])


def test_corrupt_tokenizer_is_named(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{")
    with pytest.raises(FlorenceEdgeError, match="cannot load tokenizer"):
        TextCodec(bad, {})
