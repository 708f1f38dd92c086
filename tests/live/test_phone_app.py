"""`/app/` of `live --http`: the phone page and the bundle it downloads, nothing else, under the
token rules; and the page itself in headless Chromium with a fake camera (Chromium's, fed a Y4M
video of a held-out scene): the model downloaded, checked, run in the browser, answers drawn; a
damaged bundle file, full storage and a browser without WebAssembly SIMD each refused in one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
from test_web import TOKEN, Running

from edge.demo.scenes import caption, make_scene

CHROMIUM = shutil.which("chromium")
SEED = 1_000_041
SIZE = 384


def _y4m(path, image, frames: int = 20) -> None:
    """A still as a Y4M video (4:2:0, BT.601 full range), what Chromium's fake camera plays."""
    rgb = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), np.float64)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    u = (rgb[..., 2] - y) * 0.564 + 128
    v = (rgb[..., 0] - y) * 0.713 + 128
    planes = [y] + [c.reshape(SIZE // 2, 2, SIZE // 2, 2).mean(axis=(1, 3)) for c in (u, v)]
    frame = b"FRAME\n" + b"".join(np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes() for p in planes)
    path.write_bytes(f"YUV4MPEG2 W{SIZE} H{SIZE} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)


def test_the_route_serves_the_page_and_the_bundle_and_nothing_else(demo_int8_bundle, tmp_path):
    make_scene(SEED).image.save(tmp_path / "scene.png")
    running = Running(demo_int8_bundle[0], tmp_path / "scene.png", "--token", TOKEN)
    try:
        assert running.get("/app/")[0] == 401
        status, headers, page = running.get(f"/app/?token={TOKEN}")
        assert status == 200 and b"florence-edge on this phone" in page
        cookie = headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in headers["Set-Cookie"] and cookie == f"florence_edge_token={TOKEN}"
        status, headers, wasm = running.get("/app/vendor/litert_wasm_internal.wasm", {"Cookie": cookie})
        assert status == 200 and headers["Content-Type"] == "application/wasm" and wasm[:4] == b"\0asm"
        manifest = json.loads(running.get("/app/bundle/manifest.json", {"Cookie": cookie})[2])
        for name, entry in manifest["files"].items():
            body = running.get(f"/app/bundle/{name}", {"Cookie": cookie})[2]
            assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        for path in ("/app/bundle/../manifest.json", "/app/../edge/model.py", "/app/vendor/../app.js",
                     "/app/package.json", "/app/bundle/notes.txt", "/app/node_modules/x"):
            assert running.get(path, {"Cookie": cookie})[0] == 404, path
        assert running.get("/app?tasks=OD", {"Cookie": cookie})[1]["Location"] == "/app/?tasks=OD"
    finally:
        running.stop()


def _browser(p, video, allow_camera: bool = True, *args: str):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--use-fake-ui-for-media-stream" if allow_camera else "--deny-permission-prompts",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}", *args])


def _refusal(page) -> str:
    page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=60000)
    return page.inner_text("#status")


KEPT = """new Promise(done => { const r = indexedDB.open('florence-edge', 1);
    r.onsuccess = () => { const t = r.result.transaction('files').objectStore('files').getAllKeys();
    t.onsuccess = () => done(t.result); }; })"""


def test_the_page_answers_the_phones_camera_with_the_boards_bundle(demo_int8_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    scene = make_scene(SEED)
    scene.image.save(tmp_path / "scene.png")
    _y4m(tmp_path / "camera.y4m", scene.image)
    running = Running(demo_int8_bundle[0], tmp_path / "scene.png", "--token", TOKEN)
    try:
        with sync_playwright() as p:
            browser = _browser(p, tmp_path / "camera.y4m")
            page = browser.new_page()
            # Each redraw clears the overlay first: more clears than tasks means shapes came as they decoded.
            page.add_init_script("""const clear = CanvasRenderingContext2D.prototype.clearRect;
                window.clears = 0;
                CanvasRenderingContext2D.prototype.clearRect = function (...a) {
                  window.clears++;
                  return clear.apply(this, a);
                };""")
            failed, errors = [], []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://{running.host}:{running.port}/app/?token={TOKEN}&tasks=CAPTION,OD")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('ready')",
                                   timeout=60000)
            assert "camera" in page.inner_text("#status")
            page.click("#answer")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('answered')",
                                   timeout=60000)
            answers = {line["task"]: line["text"] for line in page.evaluate(
                "[...document.querySelectorAll('#answers p')].map(p => ({task: p.dataset.task, text: p.innerText}))")}
            drawn = page.evaluate("""(() => { const c = document.getElementById('overlay');
                return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v);
            })()""")
            clears = page.evaluate("window.clears")
            browser.close()
        assert caption(scene) in answers["CAPTION"], answers
        assert clears > 1 + 2 * len(answers), clears
        assert answers["OD"] != "OD (nothing found)" and drawn, answers
        assert not failed and not errors, (failed, errors)
    finally:
        running.stop()


def test_a_damaged_bundle_file_is_refused_in_one_line(demo_copy, tmp_path):
    from playwright.sync_api import sync_playwright

    make_scene(SEED).image.save(tmp_path / "scene.png")
    running = Running(demo_copy, tmp_path / "scene.png")
    try:
        damaged = bytearray((demo_copy / "vision.tflite").read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        (tmp_path / "damaged").write_bytes(damaged)
        os.replace(tmp_path / "damaged", demo_copy / "vision.tflite")  # the running loop keeps its own
        with sync_playwright() as p:
            browser = _browser(p, "/nonexistent.y4m")
            page = browser.new_page()
            page.goto(f"http://{running.host}:{running.port}/app/")
            said = _refusal(page)
            kept = page.evaluate(KEPT)
            browser.close()
        assert said.startswith("vision.tflite does not match the bundle's checksum"), said
        assert hashlib.sha256(damaged).hexdigest() not in kept
    finally:
        running.stop()


def test_a_refused_camera_leaves_the_photo_and_says_so(demo_int8_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    make_scene(SEED).image.save(tmp_path / "scene.png")
    _y4m(tmp_path / "camera.y4m", make_scene(SEED).image)
    running = Running(demo_int8_bundle[0], tmp_path / "scene.png")
    try:
        with sync_playwright() as p:
            browser = _browser(p, tmp_path / "camera.y4m", allow_camera=False)
            page = browser.new_page()
            page.goto(f"http://{running.host}:{running.port}/app/")
            page.wait_for_function("document.getElementById('status').textContent.includes('camera')", timeout=60000)
            said, photo = page.inner_text("#status"), page.is_enabled("#photo")
            browser.close()
        assert said.startswith("the camera was refused: allow it in this site's settings, or take a photo"), said
        assert photo
    finally:
        running.stop()


def test_full_storage_is_refused_in_one_line_keeping_only_whole_checked_files(demo_int8_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    make_scene(SEED).image.save(tmp_path / "scene.png")
    running = Running(demo_int8_bundle[0], tmp_path / "scene.png")
    origin = f"http://{running.host}:{running.port}"
    quota = 3_000_000  # the demo bundle is 10 MB
    try:
        with sync_playwright() as p:
            browser = _browser(p, "/nonexistent.y4m")
            page = browser.new_page()
            page.context.new_cdp_session(page).send("Storage.overrideQuotaForOrigin",
                                                   {"origin": origin, "quotaSize": quota})
            page.goto(f"{origin}/app/")
            said = _refusal(page)
            kept = page.evaluate(KEPT)
            browser.close()
        assert said.startswith("the browser's storage is full (QuotaExceededError): free some"), said
        files = json.loads((demo_int8_bundle[0] / "manifest.json").read_text())["files"].values()
        assert set(kept) <= {entry["sha256"] for entry in files}
        assert sum(entry["bytes"] for entry in files if entry["sha256"] in kept) <= quota
    finally:
        running.stop()


def test_a_browser_without_webassembly_simd_is_told_so_before_any_download(demo_int8_bundle, tmp_path):
    from playwright.sync_api import sync_playwright

    make_scene(SEED).image.save(tmp_path / "scene.png")
    running = Running(demo_int8_bundle[0], tmp_path / "scene.png")
    try:
        with sync_playwright() as p:
            # V8 runs WebAssembly SIMD only on x86 CPUs with SSE4.1: without it, as an old phone's browser.
            browser = _browser(p, "/nonexistent.y4m", True, "--js-flags=--no-enable-sse4-1")
            page = browser.new_page()
            requested = []
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"http://{running.host}:{running.port}/app/")
            said = _refusal(page)
            browser.close()
        assert said.startswith("this browser has no WebAssembly SIMD, which the model needs"), said
        assert not [url for url in requested if "/bundle/" in url], requested
    finally:
        running.stop()
