import math

import pytest

from edge.demo import metrics


def test_average_precision():
    assert metrics.average_precision([(1.0, True), (0.5, True)], 2) == 1.0
    assert metrics.average_precision([(1.0, False), (0.5, True)], 1) == 0.5
    assert metrics.average_precision([(1.0, True)], 2) == 0.5
    assert metrics.average_precision([], 3) == 0.0
    assert math.isnan(metrics.average_precision([(1.0, False)], 0))


def test_detection_map_counts_matches_classes_and_duplicates():
    truth = [{"circle": [(0, 0, 10, 10)], "square": [(20, 20, 40, 40)]}]
    assert metrics.detection_map([{"circle": [(0, 0, 10, 10)], "square": [(21, 21, 40, 40)]}], truth) == 1.0
    assert metrics.detection_map([{"circle": [(20, 20, 40, 40)], "square": [(0, 0, 10, 10)]}], truth) == 0.0
    # a duplicate of a matched box is a false positive after the hit: AP stays 1 for that class
    dup = metrics.detection_map([{"circle": [(0, 0, 10, 10), (0, 0, 10, 10)], "square": []}], truth)
    assert dup == pytest.approx(0.5)


def test_word_accuracy_penalises_missing_and_extra_words():
    assert metrics.word_accuracy(["CAT", "DOG"], ["DOG", "CAT"]) == (2, 2)
    assert metrics.word_accuracy(["CAT"], ["DOG", "CAT"]) == (1, 2)
    assert metrics.word_accuracy(["CAT", "CAT", "SUN"], ["CAT"]) == (1, 3)


def test_mask_iou():
    square = [10, 10, 50, 10, 50, 50, 10, 50]
    assert metrics.mask_iou([square], square, (64, 64)) == 1.0
    assert metrics.mask_iou([[0, 0, 5, 0, 5, 5]], square, (64, 64)) == 0.0
    half = [10, 10, 30, 10, 30, 50, 10, 50]
    assert metrics.mask_iou([half], square, (64, 64)) == pytest.approx(0.5, abs=0.05)
    assert metrics.mask_iou([], square, (64, 64)) == 0.0
