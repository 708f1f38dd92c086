"""The overlay: shapes mapped from the model's frame to the drawn one, growing shapes faint, old
results dimmed, string answers in a band, a "no signal" frame, drawing into a BGR buffer in place."""

from __future__ import annotations

import time

import numpy as np

from edge.draw import Shape
from edge.live.incremental import Partial
from edge.live.overlay import Overlay, draw_into

BOX = Shape("box", "car", (10, 10, 30, 30))


def _changed(before, after) -> np.ndarray:
    return np.abs(np.asarray(after, dtype=int) - np.asarray(before, dtype=int)).sum(axis=2) > 0


def test_shapes_are_scaled_to_the_drawn_frame():
    overlay = Overlay(["<OD>"])
    overlay.update(Partial("<OD>", "", (BOX,)), (40, 40), clock=0.0)
    frame = np.full((400, 800, 3), 128, np.uint8)  # 20x wider, 10x taller than the model's frame
    changed = _changed(frame, overlay.render(frame, now=0.0))
    assert changed[150, 195:205].any() and changed[250, 595:605].any()  # left edge at x=200, right at 600
    assert not changed[150, 300:500].any()  # inside the box stays the picture


def test_old_results_are_dimmed_and_growing_shapes_faint():
    overlay = Overlay(["<OD>"], stale_after=5)
    overlay.update(Partial("<OD>", "", (BOX,)), (40, 40), clock=0.0)
    frame = np.full((40, 40, 3), 255, np.uint8)
    fresh = np.asarray(overlay.render(frame, now=1.0)).astype(int)
    old = np.asarray(overlay.render(frame, now=10.0)).astype(int)
    assert fresh[20, 10].tolist() != old[20, 10].tolist()
    overlay.update(Partial("<OD>", "", (), (BOX,)), (40, 40), clock=10.0)
    assert np.asarray(overlay.render(frame, now=10.0))[20, 10].tolist() == old[20, 10].tolist()


def test_string_answers_grow_in_a_band_and_no_signal_is_a_frame():
    overlay = Overlay(["<CAPTION>"])
    frame = np.zeros((200, 300, 3), np.uint8) + 200
    overlay.update(Partial("<CAPTION>", "a red", ()), (300, 200), clock=0.0)
    short = np.asarray(overlay.render(frame, now=0.0))
    overlay.update(Partial("<CAPTION>", "a red square and a blue circle", ()), (300, 200), clock=0.0)
    longer = np.asarray(overlay.render(frame, now=0.0))
    assert _changed(frame, short)[150:].any() and not _changed(frame, short)[40:120].any()  # a band at the bottom
    white = [(image[150:].min(axis=2) > 230).sum() for image in (short, longer)]
    assert 0 < white[0] < white[1]  # the text in it grew
    assert np.asarray(overlay.render(None)).mean() < 100  # dark, with NO SIGNAL written on it


def test_drawing_into_a_bgr_buffer_keeps_the_colours_right():
    overlay = Overlay(["<OD>"])
    overlay.update(Partial("<OD>", "", (BOX,)), (40, 40), clock=time.monotonic())
    rgb = np.full((40, 40, 3), 255, np.uint8)
    expected = np.asarray(overlay.render(rgb))
    bgr = rgb[:, :, ::-1].copy()
    draw_into(bgr, overlay, bgr=True)  # picamera2's RGB888 main buffer is B, G, R
    assert np.array_equal(bgr[:, :, ::-1], expected)
