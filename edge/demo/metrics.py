"""Task metrics for the synthetic scenes: detection mAP, caption match, OCR, grounding, masks."""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image, ImageDraw

from edge.demo.scenes import iou


def average_precision(hits: list[tuple[float, bool]], positives: int) -> float:
    """VOC all-point AP from (score, is-true-positive) pairs."""
    if positives == 0:
        return float("nan")
    if not hits:
        return 0.0
    order = sorted(hits, key=lambda h: -h[0])
    tp = np.cumsum([h[1] for h in order])
    fp = np.cumsum([not h[1] for h in order])
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def match_boxes(pred: list, truth: list, threshold: float = 0.5) -> list[bool]:
    """Greedy matching in prediction order: each truth box matches at most one prediction."""
    used = [False] * len(truth)
    out = []
    for box in pred:
        best, best_iou = -1, threshold
        for j, ref in enumerate(truth):
            overlap = iou(box, ref)
            if not used[j] and overlap >= best_iou:
                best, best_iou = j, overlap
        if best >= 0:
            used[best] = True
        out.append(best >= 0)
    return out


def detection_map(predictions: list[dict], truths: list[dict], threshold: float = 0.5) -> float:
    """mAP@threshold over classes. predictions/truths: per image, {label: [boxes]}.

    Florence-2 gives no confidences; a box's score is its rank in the output
    (earlier = more confident), which is how its decoder orders them.
    """
    classes = sorted({c for t in truths for c in t})
    aps = []
    for cls in classes:
        hits, positives = [], 0
        for pred, truth in zip(predictions, truths):
            boxes, refs = pred.get(cls, []), truth.get(cls, [])
            positives += len(refs)
            hits += [(1.0 / (1 + rank), ok) for rank, ok in enumerate(match_boxes(boxes, refs, threshold))]
        aps.append(average_precision(hits, positives))
    return float(np.nanmean(aps)) if aps else float("nan")


def word_accuracy(pred_words: list[str], true_words: list[str]) -> tuple[int, int]:
    """(words read right, max(predicted, true) words): extra and missing words both count against."""
    right = sum((Counter(pred_words) & Counter(true_words)).values())
    return right, max(len(pred_words), len(true_words))


def mask_iou(pred_polygons: list[list[float]], true_polygon: list[float], size: tuple[int, int]) -> float:
    pred = _raster(pred_polygons, size)
    truth = _raster([true_polygon], size)
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 0.0


def _raster(polygons, size) -> np.ndarray:
    canvas = Image.new("1", size, 0)
    pen = ImageDraw.Draw(canvas)
    for poly in polygons:
        if len(poly) >= 6:
            pen.polygon(list(zip(poly[0::2], poly[1::2])), fill=1)
    return np.asarray(canvas, dtype=bool)
