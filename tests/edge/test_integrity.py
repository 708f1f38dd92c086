"""edge.integrity: damaged bundle files are refused before LiteRT reads them; verified files are remembered."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from edge import integrity, manifest
from edge.errors import FlorenceEdgeError
from edge.model import Florence2


def _damage(path, every=3):
    """XOR every third byte of the middle half with 0x55: same size, another file."""
    data = bytearray(path.read_bytes())
    start, end = len(data) // 4, 3 * len(data) // 4
    for i in range(start, end, every):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))


def test_a_graph_damaged_in_place_is_one_line_not_a_segfault(demo_int8_bundle, tmp_path):
    bundle = tmp_path / "damaged"
    shutil.copytree(demo_int8_bundle[0], bundle)
    _damage(bundle / "decoder.tflite")
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "run", "-m", str(bundle), "-i", "samples/shapes-1.png",
                           "-t", "CAPTION"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FLORENCE_EDGE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert f"bundle file {bundle / 'decoder.tflite'} is damaged" in proc.stderr


def test_verified_files_are_remembered_until_they_change(fp32_bundle, tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    shutil.copytree(fp32_bundle[0], bundle)
    hashed = []
    real = integrity.sha256_of
    monkeypatch.setattr(integrity, "sha256_of", lambda path: hashed.append(path.name) or real(path))
    m = manifest.load_manifest(bundle)
    integrity.verify_bundle(m, tmp_path)
    assert sorted(hashed) == sorted(m.raw["files"])  # cold: every file
    hashed.clear()
    integrity.verify_bundle(m, tmp_path)
    assert hashed == []  # warm: stat only
    os.utime(bundle / "vision.tflite", ns=(1, 1))  # touched (or copied over): hashed again
    integrity.verify_bundle(m, tmp_path)
    assert hashed == ["vision.tflite"]
    assert len(json.loads((tmp_path / integrity.RECORD).read_text())) == len(m.raw["files"]) + 1


def test_without_a_cache_folder_every_load_hashes(fp32_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(fp32_bundle[0], bundle)
    m = manifest.load_manifest(bundle)
    integrity.verify_bundle(m, None)
    _damage(bundle / "tokenizer.json", every=50)
    with pytest.raises(FlorenceEdgeError, match="tokenizer.json is damaged"):
        integrity.verify_bundle(m, None)


def test_a_damaged_file_is_caught_even_after_it_was_verified(fp32_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("FLORENCE_EDGE_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "bundle"
    shutil.copytree(fp32_bundle[0], bundle)
    Florence2(bundle, num_threads=1).close()
    _damage(bundle / "encoder.tflite")  # rewritten: a new mtime
    with pytest.raises(FlorenceEdgeError, match="encoder.tflite is damaged"):
        Florence2(bundle, num_threads=1)
