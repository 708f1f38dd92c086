"""The overlay: the newest (partial or final) result of every task, drawn onto outgoing frames.

Shapes come in the pixels of the frame the model saw and are scaled to the frame being drawn
(picamera2's larger main stream, or the same frame). Settled shapes are drawn full, growing ones
(polygons still being decoded) thin; results older than `stale_after` seconds are dimmed. String
answers (captions, OCR text) grow in a band at the bottom; a status line at the top says how
fast and how fresh. Thread-safe: the worker updates, the capture thread renders.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from edge.draw import draw_shapes, font, label_plate
from edge.live.incremental import Partial

NO_SIGNAL = "NO SIGNAL"


@dataclass
class Shown:
    partial: Partial
    frame_size: tuple[int, int]  # (width, height) of the frame the model saw
    clock: float  # when that frame was captured (monotonic)


class Overlay:
    def __init__(self, tasks: list[str], stale_after: float = 5.0):
        self.tasks = list(tasks)
        self.stale_after = stale_after
        self.status = ""
        self.zones = []  # `edge.live.events.zones.Zone`s, outlined under the results
        self._shown: dict[str, Shown] = {}
        self._lock = threading.Lock()

    def update(self, partial: Partial, frame_size: tuple[int, int], clock: float) -> None:
        with self._lock:
            self._shown[partial.task] = Shown(partial, frame_size, clock)

    def render(self, image, now: float | None = None) -> Image.Image:
        """`image` (PIL, or an HxWx3 RGB array) with everything drawn on it, as a new RGB image;
        None gives a "no signal" frame."""
        canvas = _no_signal() if image is None else (
            image.convert("RGB").copy() if isinstance(image, Image.Image) else Image.fromarray(image))
        if image is not None:
            self.draw_on(canvas, time.monotonic() if now is None else now)
        return canvas

    def draw_on(self, canvas: Image.Image, now: float) -> None:
        with self._lock:
            shown = [self._shown[t] for t in self.tasks if t in self._shown]
        _zones(canvas, list(self.zones))
        index = 0
        texts = []
        for item in shown:
            dim = now - item.clock > self.stale_after
            scale = (canvas.width / item.frame_size[0], canvas.height / item.frame_size[1])
            settled = list(enumerate(item.partial.shapes, start=index))
            index += len(settled)
            growing = list(enumerate(item.partial.growing, start=index))
            draw_shapes(canvas, settled, scale, dim)
            draw_shapes(canvas, growing, scale, dim=True)  # not settled yet: drawn faint
            if item.partial.text:
                texts.append((item.partial.text, dim))
        _caption_band(canvas, texts)
        if shown:
            age = f"result {now - max(item.clock for item in shown):.1f} s old"
            _status_line(canvas, f"{self.status} · {age}" if self.status else age)


def _zones(canvas: Image.Image, zones) -> None:
    """Each zone's outline, dashed-looking thin white on black, its name at its first corner."""
    if not zones:
        return
    pen = ImageDraw.Draw(canvas)
    size = _text_size(canvas)
    for zone in zones:
        points = [(x * canvas.width, y * canvas.height) for x, y in zone.points]
        pen.line(points + points[:1], fill=(0, 0, 0), width=3)
        pen.line(points + points[:1], fill=(255, 255, 255), width=1)
        label_plate(pen, (int(points[0][0]), int(points[0][1])), zone.name, (255, 255, 255), size)


def _text_size(canvas: Image.Image) -> int:
    return max(12, min(canvas.size) // 28)


def _caption_band(canvas: Image.Image, texts: list[tuple[str, bool]]) -> None:
    """Each string answer on its own line, on a dark band along the bottom, wrapped to the width."""
    if not texts:
        return
    pen = ImageDraw.Draw(canvas)
    face = font(_text_size(canvas))
    lines = [(line, dim) for text, dim in texts for line in _wrap(pen, text, face, canvas.width - 16)]
    height = _text_size(canvas) + 6
    top = canvas.height - height * len(lines) - 8
    pen.rectangle((0, top, canvas.width, canvas.height), fill=(16, 16, 16))
    for row, (line, dim) in enumerate(lines):
        pen.text((8, top + 4 + row * height), line, fill=(150, 150, 150) if dim else (255, 255, 255), font=face)


def _wrap(pen: ImageDraw.ImageDraw, text: str, face, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if current and pen.textlength(trial, font=face) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    return [*lines, current] if current else lines


def _status_line(canvas: Image.Image, status: str) -> None:
    pen = ImageDraw.Draw(canvas)
    face = font(max(10, _text_size(canvas) * 3 // 4))
    left, top, right, bottom = pen.textbbox((0, 0), status, font=face)
    pen.rectangle((0, 0, right - left + 12, bottom - top + 8), fill=(16, 16, 16))
    pen.text((6 - left, 4 - top), status, fill=(255, 255, 255), font=face)


def _no_signal(size: tuple[int, int] = (640, 360)) -> Image.Image:
    canvas = Image.new("RGB", size, (40, 40, 40))
    pen = ImageDraw.Draw(canvas)
    face = font(size[1] // 8)
    left, top, right, bottom = pen.textbbox((0, 0), NO_SIGNAL, font=face)
    pen.text(((size[0] - right + left) // 2, (size[1] - bottom + top) // 2), NO_SIGNAL, fill=(230, 230, 230),
             font=face)
    return canvas


def draw_into(array: np.ndarray, overlay: Overlay, bgr: bool = False) -> None:
    """Draw the overlay into an HxWx3 array in place (picamera2's `main` buffer in `pre_callback`,
    whose RGB888 is B, G, R in memory)."""
    rgb = array[:, :, ::-1] if bgr else array
    canvas = Image.fromarray(np.ascontiguousarray(rgb))
    overlay.draw_on(canvas, time.monotonic())
    drawn = np.asarray(canvas)
    np.copyto(array, drawn[:, :, ::-1] if bgr else drawn)
