import numpy as np
from PIL import Image

from edge.draw import draw, shapes


def test_every_output_type_is_drawn_inside_the_image():
    image = Image.new("RGB", (200, 100), (255, 255, 255))
    parsed = {
        "<OD>": {"bboxes": [[10, 10, 60, 50], [150, 90, 120, 20]], "labels": ["car", "inverted"]},
        "<OCR_WITH_REGION>": {"quad_boxes": [[5, 60, 90, 60, 90, 95, 5, 95]], "labels": ["HELLO"]},
        "<REFERRING_EXPRESSION_SEGMENTATION>": {"polygons": [[[100, 10, 140, 10, 120, 40], [1, 2]]], "labels": [""]},
        "<OPEN_VOCABULARY_DETECTION>": {"bboxes": [], "bboxes_labels": [], "polygons": [], "polygons_labels": []},
        "<CAPTION>": "a car",
    }
    assert [s.kind for s in shapes(parsed["<OD>"])] == ["box", "box"]
    assert [s.kind for s in shapes(parsed["<OCR_WITH_REGION>"])] == ["quad"]
    assert len(shapes(parsed["<REFERRING_EXPRESSION_SEGMENTATION>"])) == 1  # a 1-point polygon is skipped
    out = draw(image, parsed)
    assert out.size == image.size
    changed = np.any(np.asarray(out) != 255, axis=2)
    assert changed[10, 10:60].any() and changed[20:90, 120].any() and changed[60, 5:90].any()
    assert changed[10, 100:140].any()
    assert np.asarray(image).min() == 255  # the original is untouched


def test_an_outline_shows_on_a_picture_of_its_own_colour_and_a_mask_lets_it_through():
    red = (230, 25, 75)  # the first shape's colour
    image = Image.new("RGB", (200, 200), red)
    parsed = {"<OD>": {"bboxes": [[40, 40, 160, 160]], "labels": ["square"]},
              "<REFERRING_EXPRESSION_SEGMENTATION>": {"polygons": [[[60, 60, 140, 60, 140, 140, 60, 140]]],
                                                      "labels": [""]}}
    out = np.asarray(draw(image, parsed)).astype(int)
    column = out[80:120, 40 - 4:40 + 5]  # across the box's left edge
    assert (column.sum(axis=2) < 60).any()  # a dark edge beside the red line
    inside = out[100, 100]
    assert 0 < np.abs(inside - np.array(red)).sum() < 200  # tinted, not painted over
