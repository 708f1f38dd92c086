"""Graph export (`converters.export`): the decoder converted in a second process gives the very file
the one-process conversion gives, and a failure there is one stage failure with the second process'
traceback in its log."""

from __future__ import annotations

import contextlib
import hashlib

import pytest

from converters import export
from converters.convert import StageFailed, decoder_buckets
from converters.graphs import Dims
from edge.manifest import DECODER


def _stage(lines):
    @contextlib.contextmanager
    def stage(label):
        lines.append(label)
        try:
            yield
        except Exception as exc:
            raise StageFailed(label, exc) from exc
    return stage


def _export(source, folder, parallel):
    dims = Dims.from_model(source.model, source.image_size[0], source.image_tokens, 16)
    lines = []
    folder.mkdir()
    paths, shapes = export.convert_graphs(source.model, dims, decoder_buckets((16,), 3, 1024), [16], folder,
                                          _stage(lines), parallel)
    return {role: hashlib.sha256(path.read_bytes()).hexdigest() for role, path in paths.items()}, shapes, lines


def test_the_decoder_converted_aside_is_the_same_file(tiny_source, tmp_path):
    alone = _export(tiny_source, tmp_path / "one", parallel=False)
    aside = _export(tiny_source, tmp_path / "two", parallel=True)
    assert aside[:2] == alone[:2]
    assert aside[2][-1] == "convert decoder graph (2 signatures), in a second process since the start"


def test_a_failure_in_the_second_process_is_one_stage_failure_with_its_traceback(tiny_source, tmp_path):
    dims = Dims.from_model(tiny_source.model, tiny_source.image_size[0], tiny_source.image_tokens, 32)
    from converters import graphs

    signatures = [("decode_b1_s16_p32", graphs.DecoderStepGraph(tiny_source.model, dims, 16),
                   graphs.decoder_inputs(dims, 1, 16))]
    (tmp_path / "a-file").write_text("")
    with export._Aside(signatures, tmp_path / "a-file") as aside:  # nowhere to write the graph
        with pytest.raises(StageFailed) as failed, _stage([])(f"convert {DECODER} graph"):
            aside.result()
    assert str(failed.value).startswith(f"convert {DECODER} graph failed: ")
    log = failed.value.log.read_text()
    assert "Traceback" in log and "_convert_and_send" in log and not aside.process.is_alive()
