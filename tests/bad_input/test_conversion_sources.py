"""Conversion sources: missing, not a checkpoint, unreadable or non-UTF-8 files, a config that is not an
object, weights that are noise; bad conversion options. All exit 2 in one line and leave no output behind."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from expect import cli, ends_cleanly

from converters.errors import ConversionError
from edge import cli as edge_cli

NOISE = bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8))


def _checkpoint_with(tiny_checkpoint, tmp_path, name: str, content: bytes):
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / name).write_bytes(content)
    return folder


SOURCES = {
    "nowhere": (lambda ck, tmp: tmp / "nowhere", "no such directory"),
    "a file": (lambda ck, tmp: _file(tmp), "is a file"),
    "no config": (lambda ck, tmp: _folder(tmp), "no config.json"),
    "config of noise": (lambda ck, tmp: _checkpoint_with(ck, tmp, "config.json", NOISE), "is not valid JSON"),
    "config in latin-1": (lambda ck, tmp: _checkpoint_with(ck, tmp, "config.json", '{"model_type": "flörence2"}'
                                                           .encode("latin-1")), "is not valid JSON"),
    "config a list": (lambda ck, tmp: _checkpoint_with(ck, tmp, "config.json", b"[1, 2]"), "not an object"),
    "config of another model": (lambda ck, tmp: _checkpoint_with(ck, tmp, "config.json", b'{"model_type": "llama"}'),
                                "model_type is 'llama'"),
    "remote-code layout": (lambda ck, tmp: _checkpoint_with(ck, tmp, "config.json", json.dumps(
        {"model_type": "florence2", "auto_map": {}}).encode()), "remote-code layout"),
    "hub id, offline": (lambda ck, tmp: "someone/florence-2-nowhere", "cannot load someone/florence-2-nowhere"),
}


def _file(tmp_path):
    (tmp_path / "weights.bin").write_bytes(NOISE)
    return tmp_path / "weights.bin"


def _folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize("case", list(SOURCES))
def test_bad_sources_are_one_line(tiny_checkpoint, tmp_path, capsys, case):
    make, message = SOURCES[case]
    out = tmp_path / "out"
    code = edge_cli.main(["convert", str(make(tiny_checkpoint, tmp_path)), "-o", str(out)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("florence-edge convert: ") and message in last, (code, last)
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "processor_config.json"])
def test_a_checkpoint_file_of_noise_is_one_line_in_a_real_process(tiny_checkpoint, tmp_path, name):
    source = _checkpoint_with(tiny_checkpoint, tmp_path, name, NOISE)
    result = cli("convert", source, "-o", tmp_path / "out")
    ends_cleanly(result, 2, f"{source} is not a loadable Florence-2 checkpoint", "convert")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--cache-sizes", "a,b"], "--cache-sizes must be integers"),
    (["--prompt-lens", "4"], "--prompt-lens must be between 8"),
    (["--prompt-lens", "16"], "the longest at least 32"),
])
def test_bad_conversion_options(tiny_checkpoint, tmp_path, capsys, args, message):
    code = edge_cli.main(["convert", str(tiny_checkpoint), "-o", str(tmp_path / "out"), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_api_raises_conversion_errors(tiny_checkpoint, tmp_path):
    from converters.convert import convert

    with pytest.raises(ConversionError, match="unknown quantization"):
        convert(str(tiny_checkpoint), tmp_path / "out", quant="int3")
