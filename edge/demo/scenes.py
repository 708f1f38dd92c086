"""Synthetic scenes with ground truth for every Florence-2 output type.

The demo model is trained on these and `florence-edge eval` measures bundles on
held-out ones, so the generator lives on the device side (numpy and Pillow only).
A scene is fully determined by its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (215, 40, 40), "green": (40, 165, 60), "blue": (40, 80, 215), "yellow": (235, 200, 30)}
WORDS = ("CAT", "DOG", "SUN", "MAP", "BOX", "TOP", "ZOO", "FOX", "HAT", "JAM", "KEY", "OWL")
BINS = 1000
CIRCLE_POINTS = 12
CANVAS = 256  # px, square
GRID = 16  # px: shape corners and word origins are placed on it
MARGIN = 8
SIDES = (64, 80, 96)
FONT_SIZE = 34
WORD_COUNTS = (0.2, 0.5, 0.3)  # chance of 0, 1, 2 words: most scenes have text to read


@dataclass
class Shape:
    shape: str
    colour: str
    box: tuple[float, float, float, float]  # pixels x1, y1, x2, y2
    polygon: list[float]  # pixels x, y, x, y, ... (the outline)

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Word:
    text: str
    box: tuple[float, float, float, float]


@dataclass
class Scene:
    image: Image.Image | None
    size: tuple[int, int]  # (width, height) of the image, kept when the pixels are dropped
    shapes: list[Shape] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


def _outline(shape: str, box) -> list[float]:
    x1, y1, x2, y2 = box
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    if shape == "square":
        pts = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    elif shape == "triangle":
        pts = [(cx, y1), (x2, y2), (x1, y2)]
    else:
        angles = [2 * math.pi * i / CIRCLE_POINTS for i in range(CIRCLE_POINTS)]
        pts = [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in angles]
    return [float(v) for p in pts for v in p]


def _background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    base = rng.integers(170, 256, 3)
    kind = rng.integers(3)
    if kind == 0:
        arr = np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    elif kind == 1:  # gradient
        other = rng.integers(170, 256, 3)
        t = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        arr = np.broadcast_to(base * (1 - t) + other * t, (height, width, 3))
    else:  # noise texture
        arr = base + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _overlaps(box, boxes) -> bool:
    return any(intersection(box, other) > 0 for other in boxes)


def _on_grid(rng: np.random.Generator, low: int, high: int) -> float:
    """A multiple of GRID in [low, high]."""
    return float(GRID * rng.integers(-(-low // GRID), high // GRID + 1))


def make_scene(seed: int) -> Scene:
    """One scene: 1-3 shapes (distinct colour and shape pairs) and 0-2 words, 1-5 objects in all.

    Simplified so that a model trained from scratch in under 45 minutes on 2 cores can
    learn every task: a fixed canvas, shapes of a few sizes and everything placed on a
    16 px grid, so each `<loc_N>` coordinate takes one of a few values.
    """
    rng = np.random.default_rng(seed)
    size = (CANVAS, CANVAS)
    scene = Scene(_background(rng, size), size)
    pen = ImageDraw.Draw(scene.image)
    placed: list = []
    pairs = [(s, c) for s in SHAPES for c in COLOURS]
    for index in rng.permutation(len(pairs))[: int(rng.integers(1, 4))]:
        shape, colour = pairs[index]
        for _ in range(50):
            side = float(rng.choice(SIDES))
            x1, y1 = (_on_grid(rng, MARGIN, int(CANVAS - side - MARGIN)) for _ in range(2))
            box = (x1, y1, x1 + side, y1 + side)
            if not _overlaps(box, placed):
                break
        else:
            continue
        polygon = _outline(shape, box)
        if shape == "circle":
            pen.ellipse(box, fill=COLOURS[colour])
        else:
            pen.polygon(list(zip(polygon[0::2], polygon[1::2])), fill=COLOURS[colour])
        placed.append(box)
        scene.shapes.append(Shape(shape, colour, box, polygon))
    font = ImageFont.load_default(size=FONT_SIZE)
    for text in rng.choice(WORDS, size=int(rng.choice(3, p=WORD_COUNTS)), replace=False):
        for _ in range(50):
            x, y = _on_grid(rng, MARGIN, CANVAS - 80), _on_grid(rng, MARGIN, CANVAS - 48)
            box = pen.textbbox((x, y), str(text), font=font)
            if not _overlaps(box, placed):
                pen.text((x, y), str(text), fill=(20, 20, 20), font=font)
                placed.append(box)
                scene.words.append(Word(str(text), tuple(float(v) for v in box)))
                break
    scene.shapes.sort(key=lambda s: (s.box[0], s.box[1]))
    scene.words.sort(key=lambda w: (w.box[1] // 20, w.box[0]))
    return scene


# ---- targets in Florence-2's own format ----

def quantize(values, size: tuple[int, int]) -> list[int]:
    """Pixels x, y, x, y ... -> bins, as Florence-2's processor quantizes."""
    out = []
    for i, v in enumerate(values):
        extent = size[i % 2]
        out.append(min(max(int(math.floor(v / (extent / BINS))), 0), BINS - 1))
    return out


def locs(values, size) -> str:
    return "".join(f"<loc_{b}>" for b in quantize(values, size))


def caption(scene: Scene) -> str:
    names = [f"a {s.name}" for s in scene.shapes]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _quad(box) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1, y1, x2, y1, x2, y2, x1, y2]


# The tasks the demo model is trained for, in `training_examples`' order; its checkpoint says so
# (`trained_tasks` in config.json) and its bundles carry it.
TASKS = ("<CAPTION>", "<OD>", "<CAPTION_TO_PHRASE_GROUNDING>", "<OCR>", "<OCR_WITH_REGION>",
         "<REFERRING_EXPRESSION_SEGMENTATION>", "<REGION_TO_CATEGORY>")


def training_examples(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str | None, str]]:
    """(task, text input, target text) for every task of `TASKS`."""
    size = scene.size
    out = [
        ("<CAPTION>", None, caption(scene)),
        ("<OD>", None, "".join(s.shape + locs(s.box, size) for s in scene.shapes)),
        ("<CAPTION_TO_PHRASE_GROUNDING>", caption(scene),
         "".join(f"a {s.name}" + locs(s.box, size) for s in scene.shapes)),
        ("<OCR>", None, " ".join(w.text for w in scene.words)),
        ("<OCR_WITH_REGION>", None, "".join(w.text + locs(_quad(w.box), size) for w in scene.words)),
    ]
    target = scene.shapes[int(rng.integers(len(scene.shapes)))]
    out.append(("<REFERRING_EXPRESSION_SEGMENTATION>", f"the {target.name}", locs(target.polygon, size)))
    out.append(("<REGION_TO_CATEGORY>", locs(target.box, size), target.name))
    return out


def intersection(a, b) -> float:
    """Area shared by two x1, y1, x2, y2 boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def iou(a, b) -> float:
    inter = intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---- clips: scenes in which shapes move, appear and leave (held-out videos for tracks and triggers) ----

@dataclass
class ClipObject:
    """One shape of a clip: visible on frames [start, end), moving `GRID` px a frame along `step`."""

    id: int
    shape: str
    colour: str
    side: float
    start: int
    end: int
    origin: tuple[float, float]
    step: tuple[int, int]

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Clip:
    seed: int
    frames: int
    objects: list[ClipObject]
    background: Image.Image

    def boxes(self, frame: int) -> dict[int, tuple[float, float, float, float]]:
        """Each visible object's box on `frame`, by object id."""
        return {o.id: _clip_box(o, frame) for o in self.objects if o.start <= frame < o.end}

    def image(self, frame: int) -> Image.Image:
        picture = self.background.copy()
        pen = ImageDraw.Draw(picture)
        for o in self.objects:
            if o.start <= frame < o.end:
                box = _clip_box(o, frame)
                if o.shape == "circle":
                    pen.ellipse(box, fill=COLOURS[o.colour])
                else:
                    outline = _outline(o.shape, box)
                    pen.polygon(list(zip(outline[0::2], outline[1::2])), fill=COLOURS[o.colour])
        return picture


def _bounce(start: float, step: int, n: int, low: float, high: float) -> float:
    """Where a coordinate is after `n` moves of `step` px, reflected at `low` and `high`."""
    if step == 0 or high <= low:
        return start
    span = high - low
    at = (start - low + step * n) % (2 * span)
    return low + (at if at <= span else 2 * span - at)


def _clip_box(o: ClipObject, frame: int) -> tuple[float, float, float, float]:
    n = frame - o.start
    high = CANVAS - MARGIN - o.side
    low = float(GRID)
    x = _bounce(o.origin[0], o.step[0] * GRID, n, low, GRID * (high // GRID))
    y = _bounce(o.origin[1], o.step[1] * GRID, n, low, GRID * (high // GRID))
    return (x, y, x + o.side, y + o.side)


def make_clip(seed: int, frames: int = 24) -> Clip:
    """A clip of `frames` frames: 1-3 shapes (distinct colour and shape pairs, placed on the grid, as
    the demo model was trained) that each come in at some frame, move one grid step a frame in
    their own direction (some stand still), bounce off the edges, and may leave before the end.
    Shapes never meet: each moves along its own row or column band, a grid step from the next."""
    rng = np.random.default_rng(seed)
    pairs = [(s, c) for s in SHAPES for c in COLOURS]
    count = int(rng.integers(1, 4))
    objects = []
    horizontal = bool(rng.integers(2))
    # Lanes a grid step apart: shapes that touch read as one to the demo model, which never saw it.
    stride = GRID * ((CANVAS - MARGIN) // count // GRID)
    for i, index in enumerate(rng.permutation(len(pairs))[:count]):
        shape, colour = pairs[index]
        side = float(rng.choice([s for s in SIDES if s <= stride - GRID]))
        start = int(rng.integers(0, max(1, frames // 3))) if rng.random() < 0.6 else 0
        end = int(rng.integers(start + frames // 3, frames + 1)) if rng.random() < 0.5 else frames
        along = _on_grid(rng, GRID, int(CANVAS - MARGIN - side))
        across = float(GRID + i * stride)
        origin = (along, across) if horizontal else (across, along)
        moving = int(rng.choice([-1, 1])) if rng.random() < 0.8 else 0
        step = (moving, 0) if horizontal else (0, moving)
        objects.append(ClipObject(i, shape, colour, side, start, end, origin, step))
    return Clip(seed, frames, objects, _background(rng, (CANVAS, CANVAS)))
