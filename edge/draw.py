"""Draw a parsed result (boxes, quads, polygons, labels) onto the original image."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60)]


def shapes(answer) -> list[tuple[str, str, list]]:
    """(kind, label, flat coordinates) for everything drawable in one task's answer."""
    if not isinstance(answer, dict):
        return []
    out = []
    for boxes_key, labels_key in (("bboxes", "labels"), ("bboxes", "bboxes_labels")):
        if boxes_key in answer and labels_key in answer:
            labels = answer[labels_key] or [""] * len(answer[boxes_key])
            out += [("box", label, box) for box, label in zip(answer[boxes_key], labels)]
            break
    for quad, label in zip(answer.get("quad_boxes", []), answer.get("labels", [])):
        out.append(("polygon", label, quad))
    poly_labels = answer.get("polygons_labels", answer.get("labels", []))
    for polys, label in zip(answer.get("polygons", []), poly_labels):
        out += [("polygon", label, poly) for poly in polys if len(poly) >= 6]
    return out


def draw(image: Image.Image, parsed: dict) -> Image.Image:
    """A copy of `image` with every shape of `parsed` ({task: answer}) drawn and labelled."""
    canvas = image.convert("RGB").copy()
    pen = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(12, min(canvas.size) // 40))
    width = max(2, min(canvas.size) // 200)
    for index, (kind, label, coords) in enumerate(s for answer in parsed.values() for s in shapes(answer)):
        colour = _COLOURS[index % len(_COLOURS)]
        if kind == "box":
            # A model can emit x2 < x1; draw the box it spans rather than fail.
            x1, y1, x2, y2 = coords
            pen.rectangle((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)), outline=colour, width=width)
        else:
            pen.polygon(list(zip(coords[0::2], coords[1::2])), outline=colour, width=width)
        if label:
            x, y = coords[0], coords[1]
            left, top, right, bottom = pen.textbbox((x, y), label, font=font)
            pen.rectangle((left, top - (bottom - top), right, top), fill=colour)
            pen.text((x, top - (bottom - top)), label, fill=(255, 255, 255), font=font)
    return canvas
