"""Pixels identical to transformers' Florence-2 processor (PIL backend)."""

import numpy as np
import pytest
from PIL import Image

from edge.errors import FlorenceEdgeError
from edge.preprocess import load_image, pixel_values


def _ours(image, processor):
    ip = processor.image_processor
    size = (ip.size["height"], ip.size["width"])
    return pixel_values(load_image(image), size, ip.image_mean, ip.image_std, ip.resample, ip.rescale_factor)


def _images():
    rng = np.random.RandomState(0)
    rgb = Image.fromarray(rng.randint(0, 256, (37, 53, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.randint(0, 256, (40, 30, 4), dtype=np.uint8), "RGBA")
    gray = Image.fromarray(rng.randint(0, 256, (90, 120), dtype=np.uint8), "L")
    palette = rgb.convert("P")
    return {"rgb": rgb, "rgba": rgba, "gray": gray, "palette": palette}


@pytest.mark.parametrize("name", ["rgb", "rgba", "gray", "palette"])
def test_pixel_values_equal_transformers(name, tiny_source):
    image = _images()[name]
    ref = tiny_source.processor.image_processor(image, return_tensors="np")["pixel_values"]
    np.testing.assert_array_equal(_ours(image, tiny_source.processor), ref)


def test_arrays_and_16_bit_images_are_converted(tiny_source):
    arr = np.random.RandomState(1).randint(0, 256, (20, 30, 3), dtype=np.uint8)
    assert load_image(arr).size == (30, 20)
    wide = (arr.astype(np.uint16) << 8)
    np.testing.assert_array_equal(np.asarray(load_image(wide)), arr)
    grey16 = Image.fromarray(arr[:, :, 0].astype(np.uint16) << 8)
    assert grey16.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(load_image(grey16))[:, :, 0], arr[:, :, 0])


def test_bad_images_are_named(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(FlorenceEdgeError, match="empty"):
        load_image(empty)
    with pytest.raises(FlorenceEdgeError, match="cannot read image .*corrupt.jpg"):
        load_image(corrupt)
    with pytest.raises(FlorenceEdgeError, match="image not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(FlorenceEdgeError, match="shape"):
        load_image(np.zeros((4, 4, 5), np.uint8))
