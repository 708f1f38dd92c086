"""edge/phone/preprocess.js against edge/preprocess.py: bit-identical model input from the same
pixels, for pictures larger and smaller than the model's, of every aspect."""

from __future__ import annotations

import base64

import numpy as np
from PIL import Image
from test_tokenizer_js import node

from edge.demo.scenes import make_scene
from edge.preprocess import pixel_values

IMAGE = {"height": 64, "width": 64, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resample": 3,
         "rescale_factor": 0.00392156862745098}


def _pictures():
    rng = np.random.default_rng(0)
    sizes = [(1, 1), (2, 3), (3, 200), (200, 3), (64, 64), (63, 65), (640, 480), (97, 131), (1280, 720), (480, 640),
             (100, 200), (64, 300), (300, 64)]
    for width, height in sizes:
        yield rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    yield np.asarray(make_scene(1_000_003).image)
    yield np.asarray(make_scene(1_000_004).image.resize((501, 333)))


def test_model_input_is_the_python_runtimes_bit_for_bit():
    cases, expected = [], []
    for picture in _pictures():
        for image in (IMAGE, dict(IMAGE, height=192, width=192), dict(IMAGE, height=48, width=80)):
            rgba = np.concatenate([picture, np.full(picture.shape[:2] + (1,), 255, np.uint8)], axis=2)
            cases.append({"rgba": base64.b64encode(rgba.tobytes()).decode(), "width": picture.shape[1],
                          "height": picture.shape[0], "image": image})
            expected.append(pixel_values(Image.fromarray(picture), (image["height"], image["width"]), image["mean"],
                                         image["std"], image["resample"], image["rescale_factor"]))
    for got, want in zip(node("preprocess", {"cases": cases}), expected):
        values = np.frombuffer(base64.b64decode(got), dtype=np.float32).reshape(want.shape)
        assert np.array_equal(values, want), np.abs(values - want).max()
