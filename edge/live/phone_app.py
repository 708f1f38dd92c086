"""What `/app/` serves: the phone page (edge/phone, shipped in the package) and the files of the
bundle the board runs, for the phone's browser to answer with. Nothing is served by path: a page
file is one of the page's own, a bundle file one its manifest names."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edge.manifest import MANIFEST_NAME, Manifest

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".tflite": "application/octet-stream"}
PAGE_FILES = ("index.html", "app.js", "bundle.js", "model.js", "decoding.js", "postprocess.js", "preprocess.js",
              "prompts.js", "tokenizer.js")
VENDOR = ("litert.js", "wasm-utils.js", "litert_wasm_internal.js", "litert_wasm_internal.wasm",
          "litert_wasm_compat_internal.js", "litert_wasm_compat_internal.wasm")


def _page_folder() -> Path:
    return Path(str(resources.files("edge").joinpath("phone")))


def missing_runtime() -> str | None:
    """Why the page cannot be served (LiteRT.js not vendored into this installation), or None."""
    absent = [name for name in VENDOR if not (_page_folder() / "vendor" / name).is_file()]
    return f"the phone page's LiteRT.js is not installed ({absent[0]} missing): make phone" if absent else None


def app_file(path: str, manifest: Manifest) -> Path | None:
    """The file behind /app/`path` ('' is the page), or None."""
    folder = _page_folder()
    if path in ("", "index.html") or path in PAGE_FILES:
        return folder / (path or "index.html")
    if path.startswith("vendor/") and path[len("vendor/"):] in VENDOR:
        return folder / path
    if path.startswith("bundle/"):
        name = path[len("bundle/"):]
        if name == MANIFEST_NAME or name in manifest.raw["files"]:
            return manifest.root / name
    return None


def content_type(path: Path) -> str:
    return TYPES.get(path.suffix, "application/octet-stream")
