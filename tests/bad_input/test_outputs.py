"""Outputs: `run --draw` and `convert -o` never replace what they should not, and say why in one line."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from expect import SAMPLE, cli, ends_cleanly, snapshot
from PIL import Image

from edge.commands.run import draw_targets
from edge.errors import FlorenceEdgeError


def _run(bundle, *extra):
    return cli("run", "-m", bundle, "-t", "OD", "--max-new-tokens", "32", *extra)


@pytest.mark.parametrize("target, message", [
    ("out", "name an image file"),
    ("out.txt", "name an image file"),
    ("folder.png", "already exists"),
    ("photo.png", "is one of the input images"),
    ("notes.png", "already exists; pass --force"),
    ("o%d_100%.jpg", "use %d once"),
    ("out.json", "name an image file"),
    ("missing/out.png", "folder"),
])
def test_refused_draw_targets_leave_every_file_alone(demo_int8_bundle, user_files, target, message):
    (user_files / "folder.png").mkdir()
    shutil.copy(user_files / "notes.txt", user_files / "notes.png")
    before = snapshot(user_files)
    result = _run(demo_int8_bundle[0], "-i", user_files / "photo.png", "--draw", user_files / target)
    ends_cleanly(result, 2, message, "run")
    assert snapshot(user_files) == before and result.stdout == ""


def test_the_input_is_refused_by_any_path_that_reaches_it(demo_int8_bundle, user_files):
    (user_files / "link.png").symlink_to(user_files / "photo.png")
    for target in ("link.png", "./photo.png", str(user_files / "photo.png")):
        result = cli("run", "-m", demo_int8_bundle[0], "-t", "OD", "-i", "photo.png", "--draw", target,
                     cwd=user_files)
        ends_cleanly(result, 2, "is one of the input images", "run")
    (user_files / "link.png").unlink()


def test_force_replaces_an_earlier_drawing_whole(demo_int8_bundle, user_files):
    target = user_files / "drawn.png"
    ends_cleanly(_run(demo_int8_bundle[0], "-i", user_files / "photo.png", "--draw", target), 0, "")
    Image.new("RGB", (8, 8)).save(target)
    ends_cleanly(_run(demo_int8_bundle[0], "-i", user_files / "photo.png", "--draw", target, "--force"), 0, "")
    assert Image.open(target).size == Image.open(SAMPLE).size
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not the temp file's 0600
    assert sorted(p.name for p in user_files.iterdir()) == ["drawn.png", "notes.txt", "photo.png"]  # no partials


def test_several_images_get_numbered_targets(tmp_path):
    images = [tmp_path / "a.png", tmp_path / "b.png"]
    assert draw_targets(str(tmp_path / "out.jpg"), images) == [tmp_path / "out-0.jpg", tmp_path / "out-1.jpg"]
    assert draw_targets(str(tmp_path / "o%d.webp"), images) == [tmp_path / "o0.webp", tmp_path / "o1.webp"]
    with pytest.raises(FlorenceEdgeError, match="use %d once"):
        draw_targets(str(tmp_path / "o%d-%d.png"), images)


# ---- convert -o ----

def _earlier_bundle(folder, names=("vision.tflite", "encoder.tflite", "decoder.tflite", "tokenizer.json")):
    folder.mkdir()
    files = {}
    for name in names:
        (folder / name).write_bytes(b"earlier " + name.encode())
        files[name] = {"bytes": 8 + len(name), "sha256": "0" * 64}
    (folder / "manifest.json").write_text(json.dumps({"format": "florence-edge-bundle", "files": files}))


def test_convert_without_force_keeps_an_existing_output(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    _earlier_bundle(out)
    before = snapshot(out)
    ends_cleanly(cli("convert", tiny_checkpoint, "-o", out), 2, "already exists; pass --force", "convert")
    assert snapshot(out) == before


@pytest.mark.parametrize("foreign", ["tokenizer.json", "manifest.json", "vision.tflite"])
def test_force_replaces_only_an_earlier_bundles_own_files(tiny_checkpoint, tmp_path, foreign):
    out = tmp_path / "out"
    out.mkdir()
    (out / foreign).write_text("the user's own file\n")
    (out / "readme.txt").write_text("also the user's\n")
    before = snapshot(out)
    result = cli("convert", tiny_checkpoint, "-o", out, "--force")
    ends_cleanly(result, 2, f"holds {foreign}, which is not a file of an earlier bundle", "convert")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial folder left


def test_an_earlier_bundle_that_does_not_list_a_name_keeps_that_file(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    _earlier_bundle(out, names=("vision.tflite", "encoder.tflite", "decoder.tflite"))
    (out / "tokenizer.json").write_text("{}")  # not the earlier bundle's: its manifest does not list it
    before = snapshot(out)
    ends_cleanly(cli("convert", tiny_checkpoint, "-o", out, "--force"), 2, "holds tokenizer.json", "convert")
    assert snapshot(out) == before


def test_an_output_whose_parent_cannot_be_made_is_one_line(tiny_checkpoint, tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = cli("convert", tiny_checkpoint, "-o", tmp_path / "a-file" / "bundle")
    ends_cleanly(result, 2, "cannot write the bundle beside", "convert")
    assert (tmp_path / "a-file").read_text() == "x"


def test_an_output_that_is_a_file_is_refused(tiny_checkpoint, tmp_path):
    (tmp_path / "out").write_text("x")
    ends_cleanly(cli("convert", tiny_checkpoint, "-o", tmp_path / "out", "--force"), 2, "exists and is a file",
                 "convert")
