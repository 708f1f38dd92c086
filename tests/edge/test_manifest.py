import json

import pytest

from edge import manifest as mf
from edge.commands.check import main as check_main
from edge.errors import FlorenceEdgeError


def test_tampered_file_fails_checksum(bundle_copy, capsys):
    path = bundle_copy / "decoder.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the hash can tell
    path.write_bytes(bytes(data))
    results = mf.verify_checksums(mf.load_manifest(bundle_copy))
    assert results == {"vision.tflite": True, "encoder.tflite": True, "decoder.tflite": False,
                       "tokenizer.json": True}

    class Args:
        bundle = str(bundle_copy)

    assert check_main(Args) == 1
    assert "decoder.tflite" in capsys.readouterr().err


def test_truncated_file_is_refused_at_load(bundle_copy):
    path = bundle_copy / "vision.tflite"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(FlorenceEdgeError, match="vision.tflite has 100 bytes"):
        mf.load_manifest(bundle_copy)


def test_missing_file_is_named(bundle_copy):
    (bundle_copy / "tokenizer.json").unlink()
    with pytest.raises(FlorenceEdgeError, match="bundle file missing: .*tokenizer.json"):
        mf.load_manifest(bundle_copy)


def test_unknown_format_version_is_refused_by_name(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FlorenceEdgeError, match="format version 99 is not supported"):
        mf.load_manifest(bundle_copy)


@pytest.mark.parametrize("content, message", [
    (None, "manifest.json is missing"),
    ("{not json", "corrupt manifest"),
    ('{"format": "other"}', "not a florence-edge bundle"),
])
def test_not_a_bundle(tmp_path, content, message):
    if content is not None:
        (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(FlorenceEdgeError, match=message):
        mf.load_manifest(tmp_path)


def test_check_passes_on_intact_bundle(fp32_bundle, capsys):
    from edge.cli import main

    assert main(["check", str(fp32_bundle[0])]) == 0
    assert capsys.readouterr().out.count("ok ") == 4
