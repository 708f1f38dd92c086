"""The browser runtime against the Python runtime, side by side on this machine.

    python benchmarks/phone.py BUNDLE [BUNDLE ...] --reps 5 --steps 20

Each bundle in headless Chromium (Debian's, driven by playwright; LiteRT.js's WebAssembly build
with relaxed SIMD, or with --build the one without; one thread) and in the Python runtime with one
thread: the vision graph, CAPTION's text encoder, a decoder step (greedy, EOS never chosen), CAPTION
end to end (at most --steps tokens); medians, the ratio, the download and the WebAssembly heap. Not
part of the installed package; `make test` installs what it needs (`make phone` LiteRT.js).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.server
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.demo.scenes import make_scene  # noqa: E402
from edge.fixed_decode import decode_fixed  # noqa: E402
from edge.model import Florence2  # noqa: E402

CHROMIUM = shutil.which("chromium")
VENDOR = ROOT / "edge" / "phone" / "vendor"


@contextlib.contextmanager
def served(bundle):
    """An HTTP server on a free loopback port: /phone/ the browser runtime, /bundle/ the bundle,
    /page/ the bare page; yields its address."""
    if not (VENDOR / "litert.js").exists():
        raise SystemExit("LiteRT.js is not in edge/phone/vendor: make phone")
    roots = {"phone": ROOT / "edge" / "phone", "bundle": Path(bundle), "page": Path(__file__).parent}

    class Files(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            prefix, _, rest = path.lstrip("/").partition("/")
            return str(roots[prefix] / rest.split("?")[0]) if prefix in roots else "/nonexistent"

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def open_page(playwright, base: str, build: str = ""):
    """The bare page with the bundle loaded on LiteRT.js's `build` (a vendored wasm build's .js file
    name; "" for the one LiteRT.js picks): `page.evaluate` reaches window.florence."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(f"{base}/page/phone_page.html")
    page.wait_for_function("document.title === 'ready'", timeout=30000)
    page.evaluate("([base, build]) => window.florence.load(base, build)", [f"{base}/bundle", build])
    return browser, page


def rgba(image) -> tuple[str, int, int]:
    """A picture as the page takes it: base64 RGBA bytes, width, height."""
    array = np.asarray(image.convert("RGBA"))
    return base64.b64encode(array.tobytes()).decode(), array.shape[1], array.shape[0]


def in_python(bundle, image, reps: int, steps: int) -> dict:
    model = Florence2(bundle, num_threads=1)
    out = {"vision": [], "encoder": [], "step": [], "caption": []}
    for _ in range(reps):
        encoded = model.encode(image)
        out["vision"].append(encoded.vision_ms)
        encoder_ms, first, rest = decode_fixed(model, encoded, "<CAPTION>", steps)
        out["encoder"].append(encoder_ms)
        out["step"] += [first, *rest]
        start = time.perf_counter()
        model.run(image, "<CAPTION>", num_beams=1, max_new_tokens=steps)
        out["caption"].append((time.perf_counter() - start) * 1e3)
    return out


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--build", default="", choices=("", "litert_wasm_compat_internal.js"),
                        help="LiteRT.js's build without relaxed SIMD, as Safari runs (default: LiteRT.js picks)")
    args = parser.parse_args()
    image = make_scene(1_000_201).image
    print("| bundle | stage | browser ms | Python ms | browser / Python |\n|---|---|---|---|---|")
    for bundle in args.bundles:
        with served(bundle) as base, sync_playwright() as p:
            browser, page = open_page(p, base, args.build)
            browser_ms = page.evaluate("([r, w, h, reps, steps]) => window.florence.time(r, w, h, reps, steps)",
                                       [*rgba(image), args.reps, args.steps])
            browser.close()
        python_ms = in_python(bundle, image, args.reps, args.steps)
        for stage in ("vision", "encoder", "step", "caption"):
            ours, theirs = statistics.median(browser_ms[stage]), statistics.median(python_ms[stage])
            print(f"| {Path(bundle).name} | {stage} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x |")
        download = sum(f.stat().st_size for f in Path(bundle).iterdir() if f.is_file())
        shipped = sum(f.stat().st_size for f in VENDOR.iterdir())
        print(f"| {Path(bundle).name} | download: bundle {download / 1e6:.1f} MB + runtime {shipped / 1e6:.1f} MB;"
              f" WebAssembly heap {browser_ms['heapMb']:.0f} MB | | | |")


if __name__ == "__main__":
    main()
