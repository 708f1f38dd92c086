"""Generated text -> structured results, with transformers' Florence-2 rules.

`parse()` returns exactly what `Florence2Processor.post_process_generation` returns
(checked on thousands of generated and malformed sequences): coordinates are pixels
of the original image, truncated to int as the native processor does (Microsoft's
original code returned floats), and the quirks are kept on purpose (a phrase never
contains '<'; labels of boxes lose non-ASCII characters; an odd trailing polygon
coordinate is dropped), so results are the same whichever side parsed them.
"""

from __future__ import annotations

import re

import numpy as np

BINS = 1000
# Every post-processing type of transformers' Florence2Processor; a manifest naming another is refused.
KINDS = ("pure_text", "ocr", "description_with_bboxes", "bboxes", "phrase_grounding", "polygons",
         "description_with_polygons", "description_with_bboxes_or_polygons")
_LOC = r"<loc_(\d+)>"
_ANY_LOC = r"<loc_\d+>"
# A label ends where a structural token starts.
_LABEL = re.compile(r"^\s*(.*?)(?=<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_)")
_POLY_LABEL = re.compile(r"^\s*(.*?)(?=<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_|<poly>)")
_BOX = re.compile(_LOC * 4)
_OCR = _LOC * 8
_POLY_TOKEN = rf"(?:{_ANY_LOC}|<sep>|<poly>|</poly>)"


def dequantize(bins, size: tuple[int, int]) -> list[int]:
    """Bins (x, y, x, y, ...) -> pixels of an image of (width, height): int((bin + 0.5) * size / 1000).

    Computed in float32, as the reference does, so the truncation lands identically.
    """
    b = np.asarray(bins, dtype=np.float32).reshape(-1, 2)
    scale = np.asarray([size[0] / BINS, size[1] / BINS], dtype=np.float32)
    return ((b + np.float32(0.5)) * scale).astype(np.int32).ravel().tolist()


def _clean(text: str) -> str:
    return text.replace("<s>", "").replace("</s>", "").replace("<pad>", "")


def _label(regex: re.Pattern, chunk: str) -> str | None:
    match = regex.search(chunk)
    return match.group().strip() if match else None


def _ascii(text: str) -> str:
    return text.encode("ascii", "ignore").decode("ascii")


def pure_text(text: str) -> str:
    return text.replace("<s>", "").replace("</s>", "").strip()


def ocr(text: str, size, pattern: str | None = None, area_threshold: float = 0.0) -> dict:
    quads, labels = [], []
    for content, *bins in re.findall(pattern or rf"(.+?){_OCR}", _clean(text)):
        quad = dequantize([int(b) for b in bins], size)
        if area_threshold > 0 and _quad_area(quad) < size[0] * size[1] * area_threshold:
            continue
        quads.append(quad)
        labels.append(content.strip())
    return {"quad_boxes": quads, "labels": labels}


def _quad_area(quad) -> float:
    # The reference's shoelace sum over the first three edges, kept as it is.
    xs, ys = quad[0::2], quad[1::2]
    return 0.5 * abs(sum(xs[i] * ys[i + 1] - xs[i + 1] * ys[i] for i in range(3)))


def _boxed_chunks(text: str, allow_empty: bool) -> list[str]:
    prefix = "" if allow_empty else "[^<]+"
    return re.findall(rf"{prefix}(?:{_ANY_LOC}){{4,}}", _clean(text))


def boxes_with_labels(text: str, size, allow_empty: bool = False) -> dict:
    """description_with_bboxes (OD, dense captions) and bboxes (region proposals)."""
    bboxes, labels = [], []
    for chunk in _boxed_chunks(text, allow_empty):
        chunk = chunk.replace("<ground>", "", 1).replace("<obj>", "", 1)
        label = _label(_LABEL, chunk) if (chunk or allow_empty) else None
        if label is None:
            continue
        for match in _BOX.findall(chunk):
            bboxes.append(dequantize([int(b) for b in match], size))
            labels.append(_ascii(label))
    return {"bboxes": bboxes, "labels": labels}


def phrase_grounding(text: str, size, banned=()) -> dict:
    bboxes, labels = [], []
    for chunk in _boxed_chunks(text, allow_empty=False):
        chunk = chunk.replace("<ground>", "", 1).replace("<obj>", "", 1)
        label = _label(_LABEL, chunk) if chunk else None
        if label is None or label in banned:
            continue
        for match in _BOX.findall(chunk):
            bboxes.append(dequantize([int(b) for b in match], size))
            labels.append(_ascii(label))
    return {"bboxes": bboxes, "labels": labels}


def _polygon_chunks(allow_empty: bool) -> re.Pattern:
    return re.compile(rf"{'' if allow_empty else '[^<]+'}{_POLY_TOKEN}{{4,}}")


def open_polygon_chunk(text: str, allow_empty: bool) -> str | None:
    """`text` (cleaned) up to its last polygon chunk if that chunk reaches the end, else None.

    Such a chunk is not settled: a later `<poly>` can drop a run that ends it, and a later
    `<poly>...</poly>` pair drops every run outside pairs; chunks before it are settled."""
    cleaned = _clean(text)
    chunks = list(_polygon_chunks(allow_empty).finditer(cleaned))
    return cleaned[: chunks[-1].start()] if chunks and chunks[-1].end() == len(cleaned) else None


def _polygon_instances(text: str, size, allow_empty: bool) -> list[tuple[str, list]]:
    """(label, polygons) per instance; a polygon is flat pixel coordinates x, y, x, y ..."""
    instances = []
    for chunk in _polygon_chunks(allow_empty).findall(_clean(text)):
        stripped = re.sub(rf"^{_ANY_LOC}", "", chunk, count=1)
        if not stripped and not allow_empty:
            continue
        label = _label(_POLY_LABEL, stripped)
        if label is None:
            continue
        if "<poly>" in chunk and "</poly>" in chunk:
            parts = re.findall(r"<poly>(.*?)</poly>", chunk)
        else:
            parts = [chunk]
        for part in parts:
            runs = re.findall(rf"((?:{_ANY_LOC})+)(?:<sep>|$)", part)
            if not runs:
                continue
            polygons = []
            for run in runs:
                bins = [int(b) for b in re.findall(_LOC, run)]
                polygons.append(dequantize(bins[: len(bins) // 2 * 2], size))
            instances.append((label, polygons))
    return instances


def polygons(text: str, size, allow_empty: bool = True) -> dict:
    found = _polygon_instances(text, size, allow_empty)
    return {"polygons": [p for _, p in found], "labels": [label for label, _ in found]}


def boxes_or_polygons(text: str, size) -> dict:
    if "<poly>" in text:
        found = _polygon_instances(text, size, allow_empty=False)
        return {"bboxes": [], "bboxes_labels": [], "polygons": [p for _, p in found],
                "polygons_labels": [label for label, _ in found]}
    boxes = boxes_with_labels(text, size)
    return {"bboxes": boxes["bboxes"], "bboxes_labels": boxes["labels"], "polygons": [], "polygons_labels": []}


def parse(text: str, task: str, kind: str, image_size: tuple[int, int], config: dict | None = None) -> dict:
    """{task: answer} for decoded text (special tokens kept); `kind` from the task table."""
    config = config or {}
    if kind == "pure_text":
        answer = pure_text(text)
    elif kind == "ocr":
        # The reference reads upper-case keys, so the published lower-case ones never apply.
        ocr_config = config.get("ocr", {})
        answer = ocr(text, image_size, ocr_config.get("PATTERN"), ocr_config.get("AREA_THRESHOLD", 0.0))
    elif kind == "description_with_bboxes":
        answer = boxes_with_labels(text, image_size)
    elif kind == "bboxes":
        answer = boxes_with_labels(text, image_size, allow_empty=True)
    elif kind == "phrase_grounding":
        banned = set(config.get("phrase_grounding", {}).get("banned_grounding_tokens", []))
        answer = phrase_grounding(text, image_size, banned)
    elif kind in ("polygons", "description_with_polygons"):
        answer = polygons(text, image_size, allow_empty=kind == "polygons")
    elif kind == "description_with_bboxes_or_polygons":
        answer = boxes_or_polygons(text, image_size)
    else:
        raise ValueError(f"unknown post-processing type {kind!r}")
    return {task: answer}
