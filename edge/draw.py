"""Draw parsed results (boxes, quads, polygons, labels) onto an image, readable on any picture.

Every outline is a coloured line on a dark edge, so a red box shows on a red object; a
segmentation polygon is also a translucent fill; a label sits on a solid plate in its shape's
colour with black or white text, whichever reads better on it. `run --draw` and the live
overlay use the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60)]
_EDGE = (0, 0, 0)
_FILL_ALPHA = 90  # of 255: the picture stays visible through a mask


@dataclass(frozen=True)
class Shape:
    """One drawable element: `kind` 'box' (x1, y1, x2, y2), 'quad' (4 corners) or 'polygon' (x, y, ...)."""

    kind: str
    label: str
    coords: tuple
    score: float | None = None  # the decoder's confidence (`edge.confidence`), where known


def shapes(answer, scores: dict | None = None) -> list[Shape]:
    """Everything drawable in one task's parsed answer, in the answer's order; `scores`: a result's
    per-shape scores ({"bboxes": [...], ...}), attached to the shapes they belong to."""
    if not isinstance(answer, dict):
        return []
    scores = scores or {}

    def score(key: str, i: int):
        values = scores.get(key, [])
        return values[i] if i < len(values) else None

    out = []
    for boxes_key, labels_key in (("bboxes", "labels"), ("bboxes", "bboxes_labels")):
        if boxes_key in answer and labels_key in answer:
            labels = answer[labels_key] or [""] * len(answer[boxes_key])
            out += [Shape("box", label, tuple(box), score("bboxes", i))
                    for i, (box, label) in enumerate(zip(answer[boxes_key], labels))]
            break
    for i, (quad, label) in enumerate(zip(answer.get("quad_boxes", []), answer.get("labels", []))):
        out.append(Shape("quad", label, tuple(quad), score("quad_boxes", i)))
    poly_labels = answer.get("polygons_labels", answer.get("labels", []))
    for i, (polys, label) in enumerate(zip(answer.get("polygons", []), poly_labels)):
        out += [Shape("polygon", label, tuple(poly), score("polygons", i)) for poly in polys if len(poly) >= 6]
    return out


def colour(index: int) -> tuple[int, int, int]:
    return _COLOURS[index % len(_COLOURS)]


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_colour(background) -> tuple[int, int, int]:
    luma = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (0, 0, 0) if luma > 150 else (255, 255, 255)


def _points(shape: Shape, scale: tuple[float, float]) -> list[tuple[float, float]]:
    sx, sy = scale
    c = shape.coords
    if shape.kind == "box":
        # A model can emit x2 < x1: draw the box it spans rather than fail.
        x1, x2 = sorted((c[0] * sx, c[2] * sx))
        y1, y2 = sorted((c[1] * sy, c[3] * sy))
        return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    return [(x * sx, y * sy) for x, y in zip(c[0::2], c[1::2])]


def _fill(canvas: Image.Image, points, rgb) -> None:
    """A translucent polygon, composited over its bounding box only (a whole frame costs ms)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    left, top = max(0, int(min(xs))), max(0, int(min(ys)))
    right, bottom = min(canvas.width, int(max(xs)) + 1), min(canvas.height, int(max(ys)) + 1)
    if right <= left or bottom <= top:
        return
    region = canvas.crop((left, top, right, bottom)).convert("RGBA")
    layer = Image.new("RGBA", region.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).polygon([(x - left, y - top) for x, y in points], fill=(*rgb, _FILL_ALPHA))
    canvas.paste(Image.alpha_composite(region, layer).convert("RGB"), (left, top))


def label_plate(pen: ImageDraw.ImageDraw, xy, text: str, rgb, size: int, dim: bool = False) -> None:
    """`text` on a solid plate of `rgb` whose lower left corner is `xy` (kept inside the image)."""
    face = font(size)
    left, top, right, bottom = pen.textbbox((0, 0), text, font=face)
    width, height = right - left + 6, bottom - top + 4
    x = min(max(0, xy[0]), max(0, pen.im.size[0] - width))
    y = min(max(0, xy[1] - height), max(0, pen.im.size[1] - height))
    plate = tuple(c // 2 for c in rgb) if dim else rgb
    pen.rectangle((x, y, x + width, y + height), fill=plate)
    pen.text((x + 3 - left, y + 2 - top), text, fill=_text_colour(plate), font=face)


def draw_shapes(canvas: Image.Image, items, scale=(1.0, 1.0), dim: bool = False) -> None:
    """Draw `(colour index, Shape)` pairs onto `canvas` in place, coordinates multiplied by `scale`;
    `dim`: half-tone, for results that have grown old."""
    width = max(2, min(canvas.size) // 200)
    text_size = max(12, min(canvas.size) // 40)
    for index, shape in items:
        rgb = colour(index)
        points = _points(shape, scale)
        if shape.kind == "polygon" and not dim:
            _fill(canvas, points, rgb)
    pen = ImageDraw.Draw(canvas)
    for index, shape in items:
        rgb = colour(index)
        line = tuple(c // 2 for c in rgb) if dim else rgb
        points = _points(shape, scale)
        closed = points + points[:1]
        pen.line(closed, fill=_EDGE, width=width + 2, joint="curve")
        pen.line(closed, fill=line, width=width, joint="curve")
        if shape.label:
            x, y = min(p[0] for p in points), min(p[1] for p in points)
            label_plate(pen, (int(x), int(y)), shape.label, rgb, text_size, dim)


def draw(image: Image.Image, parsed: dict) -> Image.Image:
    """A copy of `image` with every shape of `parsed` ({task: answer}) drawn and labelled."""
    canvas = image.convert("RGB").copy()
    found = [s for answer in parsed.values() for s in shapes(answer)]
    draw_shapes(canvas, list(enumerate(found)))
    return canvas
