"""Bundles and manifests: missing, damaged in place, manifests with missing or wrong-typed keys, names
leading outside the bundle. Each is one line before LiteRT reads a byte, on every command and in the API."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from expect import SAMPLE, cli, ends_cleanly

from edge.errors import FlorenceEdgeError
from edge.model import Florence2


def _edit_manifest(bundle, change) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _rehash(bundle, name: str) -> None:
    """Make the manifest agree with a changed file: damage the checksum cannot see (a converter bug)."""
    data = (bundle / name).read_bytes()

    def agree(manifest):
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    _edit_manifest(bundle, agree)


def _commands(bundle):
    return {
        "run": ["run", "-m", bundle, "-i", SAMPLE, "-t", "OD"],
        "bench": ["bench", "-m", bundle, "--reps", "1", "--warmup", "0", "--new-tokens", "2"],
        "eval": ["eval", "-m", bundle, "--scenes", "1"],
        "check": ["check", bundle],
    }


@pytest.mark.parametrize("command", ["run", "bench", "eval", "check"])
def test_a_missing_bundle_on_every_command(tmp_path, command):
    ends_cleanly(cli(*_commands(tmp_path / "nowhere")[command]), 2, "bundle not found", command)


@pytest.mark.parametrize("command", ["run", "bench", "check"])
def test_a_file_or_an_empty_folder_is_not_a_bundle(tmp_path, command):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    ends_cleanly(cli(*_commands(tmp_path / "file")[command]), 2, "bundle not found", command)
    ends_cleanly(cli(*_commands(tmp_path / "empty")[command]), 2, "manifest.json is missing", command)


def _xor_middle(path) -> None:
    """The issue's damage: every third byte of the middle half XORed with 0x55, size unchanged."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 4, 3 * len(data) // 4, 3):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("graph", ["vision", "encoder", "decoder"])
def test_a_graph_damaged_in_place_is_named_not_a_segfault(demo_copy, graph):
    _xor_middle(demo_copy / f"{graph}.tflite")
    for command in ("run", "bench"):
        ends_cleanly(cli(*_commands(demo_copy)[command]), 2, f"{graph}.tflite is damaged", command)
    with pytest.raises(FlorenceEdgeError, match="damaged"):
        Florence2(demo_copy)


def test_a_graph_the_checksum_cannot_catch_fails_in_one_line(demo_copy):
    """Zeroed bytes near the start of a graph, the manifest re-hashed to match: LiteRT itself refuses."""
    path = demo_copy / "decoder.tflite"
    data = bytearray(path.read_bytes())
    data[4096:8192] = bytes(4096)
    path.write_bytes(bytes(data))
    _rehash(demo_copy, "decoder.tflite")
    result = cli(*_commands(demo_copy)["run"])
    ends_cleanly(result, 2, "decoder.tflite", "run")


def test_a_tokenizer_that_is_not_json_is_named(demo_copy):
    (demo_copy / "tokenizer.json").write_bytes(b"\xff\xfe garbage")
    _rehash(demo_copy, "tokenizer.json")
    ends_cleanly(cli(*_commands(demo_copy)["run"]), 2, "cannot load tokenizer", "run")


def _drop(*keys):
    def change(manifest):
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return change


def _set(value, *keys):
    def change(manifest):
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


MANIFEST_DAMAGE = {
    "no model": (_drop("model"), "model is missing"),
    "no decoder layers": (_drop("model", "decoder_layers"), "model.decoder_layers is missing"),
    "no files": (_drop("files"), "files is missing"),
    "no decoder buckets": (_drop("graphs", "decoder", "buckets"), "graphs.decoder.buckets is missing"),
    "no eos": (_drop("special_tokens", "eos"), "special_tokens.eos is missing"),
    "mean as text": (_set("0.5", "image", "mean"), "image.mean must be a list"),
    "beams as bool": (_set(True, "generation", "num_beams"), "generation.num_beams must be int"),
    "tasks as a list": (_set([], "tasks"), "tasks must be an object"),
    "height as float": (_set(768.0, "image", "height"), "image.height must be int"),
    "unknown post-processing": (_set({"prompt": "x", "post_processing": "magic"}, "tasks", "<X>"),
                                "unknown post-processing type 'magic'"),
    "bad dtype": (lambda m: next(iter(m["graphs"]["vision"]["signatures"].values()))["inputs"]
                  ["pixel_values"].update(dtype="complex512"), "no valid dtype"),
    "empty buckets": (_set([], "graphs", "decoder", "buckets"), "must not be empty"),
    "trained task unknown": (_set(["<NOPE>"], "trained_tasks"), "trained_tasks must be a list of the bundle's tasks"),
    "parent path": (lambda m: m["files"].update({"../outside.bin": {"bytes": 1, "sha256": "0" * 64}}),
                    "'../outside.bin' is not a plain name"),
    "absolute path": (lambda m: m["files"].update({"/etc/hostname": {"bytes": 1, "sha256": "0" * 64}}),
                      "'/etc/hostname' is not a plain name"),
    "graph outside files": (_set("/etc/hostname", "graphs", "vision", "file"), "is not among the bundle's files"),
    "manifest emptied": (lambda m: m.clear(), "has no format"),
}


@pytest.mark.parametrize("case", list(MANIFEST_DAMAGE))
def test_a_damaged_manifest_is_refused_in_the_api(demo_copy, case):
    change, message = MANIFEST_DAMAGE[case]
    _edit_manifest(demo_copy, change)
    with pytest.raises(FlorenceEdgeError, match=None) as caught:
        Florence2(demo_copy)
    assert message in str(caught.value)


def test_damaged_manifests_on_the_cli(demo_copy, tmp_path):
    for case, (change, message) in MANIFEST_DAMAGE.items():
        bundle = tmp_path / case.replace(" ", "-")
        shutil.copytree(demo_copy, bundle)
        _edit_manifest(bundle, change)
        ends_cleanly(cli(*_commands(bundle)["run"]), 2, message, "run")


def test_a_link_leading_out_of_the_bundle_is_not_followed(demo_copy, tmp_path):
    outside = tmp_path / "elsewhere.json"
    shutil.move(demo_copy / "tokenizer.json", outside)
    (demo_copy / "tokenizer.json").symlink_to(outside)  # same bytes, same hash: only the path is wrong
    ends_cleanly(cli(*_commands(demo_copy)["run"]), 2, "leads outside the bundle folder", "run")


def test_an_unknown_format_version_says_to_convert_again(demo_copy):
    _edit_manifest(demo_copy, _set(99, "format_version"))
    ends_cleanly(cli(*_commands(demo_copy)["run"]), 2, "format version 99 is not supported", "run")


@pytest.mark.parametrize("bundle", [123, None, ["a"]])
def test_a_bundle_argument_of_the_wrong_type(bundle):
    with pytest.raises(FlorenceEdgeError, match="a bundle is a directory path"):
        Florence2(bundle)


def test_an_int4_bundle_on_the_interpreter_is_one_line_on_run_and_live(int4_bundle):
    bundle = str(int4_bundle[0])
    said = "int4 weights need the compiled runtime"
    ends_cleanly(cli("run", "-m", bundle, "-i", SAMPLE, "-t", "CAPTION", "--runtime", "interpreter"), 2, said, "run")
    ends_cleanly(cli("live", "-m", bundle, "--source", "scenes", "-t", "CAPTION", "--frames", "1", "--runtime",
                     "interpreter"), 2, said,
                 "live")
    with pytest.raises(FlorenceEdgeError, match=said):
        Florence2(bundle, runtime="interpreter")
