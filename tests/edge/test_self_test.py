"""The self-test a long run starts with (`florence-edge check --run`, `live`), on the demo bundle as
its owner would meet damage: a weight cache rotted past its header (caught by its seal, and where the
seal cannot see it, by the probe), a bundle file rotted after its first verification (its
modification time kept), and a CPU that answers otherwise than the conversion's. Each either comes
back correct or is refused in one line with exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from expect import SAMPLE, cli, ends_cleanly

from edge import weight_cache
from edge.probe import picture

TASKS = ("-t", "CAPTION", "-t", "OD", "--json")


def _rot(path: Path, count: int = 4000) -> None:
    """Bit rot as a card leaves it: bytes in the middle flipped, size, header and modification time kept."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0x5A
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _answers(bundle, *extra) -> list[dict]:
    result = cli("run", "-m", bundle, "-i", SAMPLE, *TASKS, *extra)
    ends_cleanly(result, 0, "")
    return [{k: line[k] for k in ("task", "text", "parsed")} for line in map(json.loads, result.stdout.splitlines())]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("FLORENCE_EDGE_CACHE", str(folder))
    return folder


def test_the_conversion_records_a_probe_that_passes_on_both_runtime_paths(demo_int8_bundle, cache):
    probe = demo_int8_bundle[1]["probe"]
    assert sorted(probe["tasks"]) == ["<CAPTION>", "<OD>"]
    assert all(task["exact"] >= 4 for task in probe["tasks"].values()), probe["tasks"]  # a trained model is sure
    for runtime in ("compiled", "interpreter"):
        result = cli("check", demo_int8_bundle[0], "--run", "--runtime", runtime)
        ends_cleanly(result, 0, "")
        assert f"ok  self-test ({runtime} runtime" in result.stdout and "answered as at conversion" in result.stdout


def test_the_int4_probe_passes_here(demo_int4_bundle, cache):
    result = cli("check", demo_int4_bundle[0], "--run")
    ends_cleanly(result, 0, "")
    assert "ok  self-test (compiled runtime" in result.stdout and "answered as at conversion" in result.stdout


def test_a_cache_rotted_past_its_header_is_packed_again_not_used(demo_int8_bundle, cache):
    bundle = demo_int8_bundle[0]
    want = _answers(bundle)
    caches = sorted(cache.glob("*.xnnpack"))
    assert len(caches) == 3 and all(Path(f"{c}.crc32").exists() for c in caches)
    for path in caches:
        _rot(path)
    result = cli("run", "-m", bundle, "-i", SAMPLE, *TASKS)
    ends_cleanly(result, 0, "")
    assert result.stderr.count("was damaged (its CRC-32 is not the one sealed with it)") == 3, result.stderr
    assert [{k: line[k] for k in ("task", "text", "parsed")} for line in map(json.loads, result.stdout.splitlines())
            ] == want


def test_damage_the_seal_cannot_see_is_found_by_the_probe_and_repaired(demo_int8_bundle, cache):
    """A cache rotted and sealed again (as if the damage came before the seal): the self-test's probe
    finds the answers moved, drops the cache, packs again and passes; the answers are right again."""
    bundle = demo_int8_bundle[0]
    want = _answers(bundle)
    for path in cache.glob("*.xnnpack"):
        _rot(path)
        Path(f"{path}.crc32").unlink()
        weight_cache.seal(path)
    assert _answers(bundle) != want  # what a run without the self-test would publish
    result = cli("check", bundle, "--run")
    ends_cleanly(result, 0, "")
    assert "ok  self-test" in result.stdout and "repaired:" in result.stdout, result.stdout
    assert "the weight cache was dropped and packed again, and the probe passes now" in result.stderr
    assert _answers(bundle) == want


@pytest.mark.parametrize("runtime", ["compiled", "interpreter"])
def test_a_bundle_file_rotted_after_its_verification_is_found_at_the_next_start(demo_copy, cache, runtime):
    _answers(demo_copy, "--runtime", runtime)  # verified once: remembered by its identity, mtime included
    _rot(demo_copy / "decoder.tflite", 64)
    result = cli("live", "-m", demo_copy, "--source", "scenes", "-t", "CAPTION", "--frames", "1", "--runtime",
                 runtime)
    ends_cleanly(result, 2, f"bundle file {demo_copy / 'decoder.tflite'} is damaged", "live")


def test_a_cpu_that_answers_otherwise_is_refused_in_one_line(demo_copy, cache):
    manifest = json.loads((demo_copy / "manifest.json").read_text())
    caption = manifest["probe"]["tasks"]["<CAPTION>"]
    caption["tokens"][1] += 1  # as if this CPU's sure first word were another
    (demo_copy / "manifest.json").write_text(json.dumps(manifest))
    result = cli("check", demo_copy, "--run")
    ends_cleanly(result, 2, f"self-test failed: <CAPTION> token 2 is {caption['tokens'][1] - 1}, recorded "
                            f"{caption['tokens'][1]}, with every bundle file intact and the weights packed afresh",
                 "check")


def test_the_probe_picture_is_drawn_the_same_everywhere():
    """Every bundle's recorded probe is of this picture: a change to the drawing must bump probe.VERSION."""
    import hashlib

    assert hashlib.sha256(picture().tobytes()).hexdigest()[:16] == "21a45d5cb142300e"
