"""edge/phone/bundle.js: its SHA-256 (for pages without crypto.subtle) against hashlib at every
padding boundary, and the one line it says of a manifest it cannot run."""

from __future__ import annotations

import base64
import hashlib
import json
import os

from test_tokenizer_js import node


def test_sha256_is_hashlibs(demo_int8_bundle):
    blobs = [os.urandom(n) for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001)]
    blobs.append((demo_int8_bundle[0] / "vision.tflite").read_bytes())
    got = node("bundle", {"blobs": [base64.b64encode(b).decode() for b in blobs], "manifests": []})
    assert got["sha256"] == [hashlib.sha256(b).hexdigest() for b in blobs]


def test_manifests_it_cannot_run_are_one_line(demo_int8_bundle):
    manifest = json.loads((demo_int8_bundle[0] / "manifest.json").read_text())
    cases = [manifest, {**manifest, "format": "other"}, {**manifest, "format_version": 3},
             {**manifest, "quantization": {**manifest["quantization"], "name": "int4"}}]
    assert node("bundle", {"blobs": [], "manifests": cases})["problems"] == [
        None,
        "this is not a florence-edge bundle (its manifest.json says otherwise)",
        "bundle format version 3; this page reads version 4: convert the model again with this florence-edge",
        "this page runs int8 bundles, not int4: convert with --quant int8 for phones",
    ]
