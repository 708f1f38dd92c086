"""The packed-weight cache's seal: a cache is read only when its CRC-32 matches the one written with
it; a cache a killed first load left half-written (no seal) or one rotted since is removed before
LiteRT opens it, packed again and sealed, and the answers are the ones an intact cache gives."""

from __future__ import annotations

import json
from pathlib import Path

from expect import SAMPLE, cli, ends_cleanly

from edge import weight_cache


def _answers(bundle) -> list[str]:
    result = cli("run", "-m", bundle, "-i", SAMPLE, "-t", "OD", "-t", "CAPTION", "--json")
    ends_cleanly(result, 0, "")
    return [json.loads(line)["text"] for line in result.stdout.splitlines()]


def test_a_cache_left_half_written_is_packed_again(demo_int8_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("FLORENCE_EDGE_CACHE", str(tmp_path))
    want = _answers(demo_int8_bundle[0])
    caches = sorted(tmp_path.glob("*.xnnpack"))
    whole = {c: c.read_bytes() for c in caches}
    for cache in caches:  # what a power cut during the first pack leaves: part of the file, never sealed
        cache.write_bytes(whole[cache][: len(whole[cache]) // 2])
        Path(f"{cache}.crc32").unlink()
    assert _answers(demo_int8_bundle[0]) == want
    assert {c: c.read_bytes() for c in caches} == whole and all(Path(f"{c}.crc32").exists() for c in caches)


def test_prepare_keeps_an_intact_cache_and_names_a_rotted_one(tmp_path):
    cache = tmp_path / "graph.xnnpack"
    cache.write_bytes(bytes(range(256)) * 64)
    weight_cache.seal(cache)
    assert weight_cache.prepare(cache) is None and cache.exists()
    data = bytearray(cache.read_bytes())
    data[5000] ^= 1
    cache.write_bytes(data)
    assert weight_cache.prepare(cache) == (f"the weight cache {cache} was damaged (its CRC-32 is not the one "
                                           "sealed with it): packing the weights again")
    assert not cache.exists() and not Path(f"{cache}.crc32").exists()
