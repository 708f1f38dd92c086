"""Images: missing, empty, corrupt, truncated, not an image, wrong types; 16-bit files decode as their 8-bit twins."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from expect import SAMPLE, cli, ends_cleanly
from PIL import Image

from edge.errors import FlorenceEdgeError
from edge.model import Florence2


def _bad_images(folder):
    png = SAMPLE.read_bytes()
    cases = {
        "missing.png": None,
        "empty.png": b"",
        "random.png": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "truncated.png": png[: len(png) // 2],
        "text.jpg": b"not an image at all\n",
        "header-only.png": png[:33],
    }
    for name, data in cases.items():
        if data is not None:
            (folder / name).write_bytes(data)
    (folder / "folder.png").mkdir()
    return [*cases, "folder.png"]


@pytest.fixture(scope="module")
def model(demo_int8_bundle):
    return Florence2(demo_int8_bundle[0])


@pytest.fixture
def bad_images(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    return folder, _bad_images(folder)


def test_bad_images_on_the_cli(demo_int8_bundle, bad_images, user_files):
    folder, names = bad_images
    for name in names:
        result = cli("run", "-m", demo_int8_bundle[0], "-i", folder / name, "-t", "OD", "--draw",
                     user_files / "out.jpg")
        ends_cleanly(result, 2, str(folder / name), "run")
        assert not (user_files / "out.jpg").exists()


def test_bad_images_in_the_api(model, bad_images):
    folder, names = bad_images
    for name in names:
        with pytest.raises(FlorenceEdgeError, match="image"):
            model.run(folder / name, "OD")


@pytest.mark.parametrize("image", [123, None, b"bytes", np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4, 3), np.uint8),
                                   np.zeros((4, 4, 3), np.float64)])
def test_wrong_image_types_in_the_api(model, image):
    with pytest.raises(FlorenceEdgeError):
        model.run(image, "OD")


def _png16(path, array: np.ndarray) -> None:
    """A 16-bit PNG (grey or RGB) written by hand: Pillow writes 16-bit grey but not 48-bit RGB."""
    height, width = array.shape[:2]
    colour_type = 2 if array.ndim == 3 else 0
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("grey", [False, True], ids=["rgb48", "grey16"])
def test_a_16_bit_png_gives_the_pixels_and_tokens_of_its_8_bit_twin(model, tmp_path, grey):
    eight = np.asarray(Image.open(SAMPLE).convert("L" if grey else "RGB"))
    Image.fromarray(eight).save(tmp_path / "8.png")
    _png16(tmp_path / "16.png", eight.astype(np.uint16) * 257)  # v * 257: the usual 8 -> 16 bit widening
    from edge.preprocess import load_image

    assert np.array_equal(np.asarray(load_image(tmp_path / "16.png")), np.asarray(load_image(tmp_path / "8.png")))
    for task in ("OD", "CAPTION"):
        assert model.run(tmp_path / "16.png", task).token_ids == model.run(tmp_path / "8.png", task).token_ids
    # Pillow before 10 (Debian bookworm's) opens a 16-bit grey PNG as mode "I".
    as_i = Image.fromarray(eight.astype(np.int32) * 257) if grey else None
    if as_i is not None:
        assert np.array_equal(np.asarray(load_image(as_i)), np.asarray(load_image(tmp_path / "8.png")))
