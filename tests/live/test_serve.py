"""`florence-edge serve BUNDLE`: the phone page's routes and nothing else, the token rules, a
damaged bundle or an open address without a token refused in one line, a clean stop."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys

from expect import ROOT, cli, ends_cleanly

TOKEN = "phone-token"


def _get(address, path, headers=None):
    conn = http.client.HTTPConnection(*address, timeout=30)
    conn.request("GET", path, headers=headers or {})
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    return reply.status, dict(reply.getheaders()), body


def test_serve_gives_phones_the_page_and_the_bundle(demo_int8_bundle):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", str(demo_int8_bundle[0]), "--http",
                             "127.0.0.1:0", "--token", TOKEN], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        match = re.search(r"http://localhost:(\d+)/app/\?token=\.\.\.", line)
        assert match, line
        address = ("127.0.0.1", int(match.group(1)))
        assert _get(address, "/app/")[0] == 401
        status, headers, page = _get(address, f"/app/?token={TOKEN}")
        assert status == 200 and b"florence-edge on this phone" in page
        cookie = {"Cookie": headers["Set-Cookie"].split(";")[0]}
        manifest = json.loads(_get(address, "/app/bundle/manifest.json", cookie)[2])
        body = _get(address, "/app/bundle/decoder.tflite", cookie)[2]
        assert hashlib.sha256(body).hexdigest() == manifest["files"]["decoder.tflite"]["sha256"]
        assert _get(address, f"/?token={TOKEN}")[1]["Location"] == f"/app/?token={TOKEN}"
        for path in ("/stats", "/stream.mjpg", "/events/1/clip.mp4", "/config", "/app/../manifest.json"):
            assert _get(address, path, cookie)[0] == 404, path
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_a_damaged_bundle_and_an_open_address_without_token_are_one_line(demo_copy):
    ends_cleanly(cli("serve", demo_copy, "--http", "0.0.0.0:0"), 2, "would open the view to the network", "serve")
    damaged = bytearray((demo_copy / "encoder.tflite").read_bytes())
    damaged[100] ^= 0xFF
    (demo_copy / "encoder.tflite").write_bytes(damaged)
    ends_cleanly(cli("serve", demo_copy, "--http", "127.0.0.1:0"), 2, "encoder.tflite", "serve")
