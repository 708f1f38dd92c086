"""The web page in a real headless browser (Debian's chromium, driven by playwright): results drawn
over the video where the ground truth says, and the caption on the page."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
from PIL import Image
from test_web import Running

from edge.demo.scenes import caption, make_scene

CHROMIUM = shutil.which("chromium")
SEED = 1_000_031
SIZE = 384


def _drawn(page) -> np.ndarray:
    """Where the canvas draws over the video, once the video shows: the view with and without it."""
    page.wait_for_function("document.getElementById('video').naturalWidth > 0", timeout=30000)
    page.wait_for_timeout(500)
    view = page.locator("#view")
    with_overlay = Image.open(io.BytesIO(view.screenshot())).convert("RGB")
    page.evaluate("document.getElementById('overlay').style.visibility = 'hidden'")
    clean = Image.open(io.BytesIO(view.screenshot())).convert("RGB")
    page.evaluate("document.getElementById('overlay').style.visibility = 'visible'")
    return np.abs(np.asarray(with_overlay, int) - np.asarray(clean, int)).sum(axis=2) > 60


def test_the_page_draws_boxes_at_the_truth_and_shows_the_caption(demo_int8_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "this test needs Debian's chromium: make test (or make chromium) installs it"
    scene = make_scene(SEED)
    scene.image.resize((SIZE, SIZE)).save(tmp_path / "scene.png")
    # Change detection on: the still's frames reuse the first answer, so nothing is mid-decode on screen.
    running = Running(demo_int8_bundle[0], tmp_path / "scene.png", change_threshold="0.03")
    try:
        running.wait_inferred(1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            failed = []  # a request the page makes that fails is a console error in every session
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(f"http://{running.host}:{running.port}/")
            page.wait_for_function("document.querySelectorAll('.answer').length >= 2", timeout=30000)
            page.wait_for_function("document.getElementById('stats').textContent.includes('capture to answer')",
                                   timeout=30000)
            page.wait_for_function(f"document.getElementById('answer-<CAPTION>').innerText.includes("
                                   f"{json.dumps(caption(scene))})", timeout=30000)
            drawn = _drawn(page)
            answers = page.inner_text("#answers")
            assert not failed, failed
            # Its icon is in the page: a browser asks the board for none (a 404 and a console error).
            assert page.evaluate("document.querySelector('link[rel=icon]').href.startsWith('data:image/png')")
            # The control changes the tasks while it runs, and says what is wrong with a bad one.
            page.fill("#tasks", "NOPE")
            page.click("button")
            page.wait_for_function("document.getElementById('configured').textContent.includes('unknown task')")
            page.fill("#tasks", "OCR CAPTION")
            page.click("button")
            page.wait_for_function("document.getElementById('answer-<OCR>') !== null"
                                   " && document.getElementById('answer-<OD>') === null", timeout=30000)
            browser.close()
    finally:
        running.stop()
    assert caption(scene) in answers
    scale = drawn.shape[1] / 256
    for shape in scene.shapes:
        x1, y1, x2, y2 = (round(v * scale) for v in shape.box)
        middle_y, middle_x = (y1 + y2) // 2, (x1 + x2) // 2
        # Each edge of the true box has overlay pixels within a few pixels of it...
        assert drawn[middle_y, x1 - 4:x1 + 5].any() and drawn[middle_y, x2 - 4:x2 + 5].any(), shape.name
        assert drawn[y1 - 4:y1 + 5, middle_x].any() or drawn[y1 - 20:y1 + 5, x1:x2].any(), shape.name
        assert drawn[y2 - 4:y2 + 5, middle_x].any(), shape.name
        # ...and the picture inside it is left clean.
        assert not drawn[middle_y - 5:middle_y + 5, middle_x - 5:middle_x + 5].any(), shape.name


def test_the_page_lists_events_and_draws_zones(demo_int8_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "this test needs Debian's chromium: make test (or make chromium) installs it"
    scene = make_scene(SEED)
    scene.image.resize((SIZE, SIZE)).save(tmp_path / "scene.png")
    target = scene.shapes[0].name
    running = Running(demo_int8_bundle[0], tmp_path / "scene.png", "--zone", "left=0,0 0.5,0 0.5,1 0,1",
                      "--trigger", f"seen=a {target}", "--snapshots", tmp_path / "snaps", change_threshold="0.03")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(f"http://{running.host}:{running.port}/")
            page.wait_for_function("[...document.querySelectorAll('#events li')].some("
                                   "li => li.textContent.includes('on seen'))", timeout=60000)
            drawn = _drawn(page)
            events = page.inner_text("#events")
            link = page.locator("#events li.on a", has_text="snapshot").first.get_attribute("href")
            page.wait_for_timeout(1000)  # the snapshot is written on its own thread
            kept = page.request.get(f"http://{running.host}:{running.port}/{link}")
            kept = (kept.status, kept.headers["content-type"], kept.body())
            browser.close()
    finally:
        running.stop()
    assert "new" in events and "on seen" in events
    assert kept[:2] == (200, "image/jpeg") and kept[2][:2] == b"\xff\xd8"
    middle = drawn.shape[1] // 2
    column = drawn[:, middle - 2:middle + 3].any(axis=1)
    assert column.mean() > 0.3  # the zone's dashed right edge runs down the middle
