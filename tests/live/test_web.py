"""The web view with a real HTTP client against `live --http` on a test video: every route, the
token rules, stalled and many clients, malformed requests; the loop keeps inferring throughout."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token"


class Running:
    """A `live --http` process on port 0 (the OS picks), its address read from its stderr."""

    def __init__(self, bundle, video, *extra, change_threshold: str = "0"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "live", "-m", str(bundle), "--source", str(video), "-t", "OD",
             "-t", "CAPTION", "--loop", "--change-threshold", change_threshold, "--http", "127.0.0.1:0", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        said = ""  # the self-test's line comes first, then the address
        while not (match := re.search(r"http://([\d.]+):(\d+)/", said)) and (line := self.proc.stderr.readline()):
            said += line
        assert match, said
        self.host, self.port = match.group(1), int(match.group(2))

    def get(self, path: str, headers=None, method="GET", body=None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        data = reply.read()
        conn.close()
        return reply.status, dict(reply.getheaders()), data

    def stats(self, **headers) -> dict:
        return json.loads(self.get("/stats", headers)[2])

    def wait_inferred(self, count: int, headers=None, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats(**(headers or {}))
            if stats["inferred"] >= count:
                return stats
            time.sleep(0.2)
        raise AssertionError(f"the loop inferred only {stats['inferred']} frames")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0 and "Traceback" not in err, err[-3000:]
        return err


@pytest.fixture(scope="module")
def view(demo_int8_bundle, scene_video):
    running = Running(demo_int8_bundle[0], scene_video)
    yield running
    running.stop()


def _stream_parts(running: Running, path: str, count: int, headers=None) -> list[bytes]:
    conn = http.client.HTTPConnection(running.host, running.port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    reply = conn.getresponse()
    assert reply.status == 200 and reply.getheader("Content-Type").startswith("multipart/x-mixed-replace")
    parts = []
    while len(parts) < count:
        assert reply.fp.readline().strip() == b"--frame"
        head = {}
        while (line := reply.fp.readline().strip()):
            name, _, value = line.decode().partition(": ")
            head[name] = value
        parts.append(reply.fp.read(int(head["Content-Length"])))
        reply.fp.readline()
    conn.close()
    return parts


def test_every_route(view, tmp_path):
    view.wait_inferred(3)
    status, headers, page = view.get("/")
    assert status == 200 and b"<canvas" in page and b"EventSource" in page and b"http" not in page.split(b"<script>")[0]
    assert view.get("/healthz")[:1] == (200,)
    for path in ("/snapshot.jpg", "/snapshot.jpg?overlay=0"):
        status, headers, jpeg = view.get(path)
        (tmp_path / "s.jpg").write_bytes(jpeg)
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and Image.open(tmp_path / "s.jpg").size == (
            384, 384)
    parts = _stream_parts(view, "/stream.mjpg?overlay=0", 3)
    assert all(part[:2] == b"\xff\xd8" for part in parts)
    results = json.loads(view.get("/results")[2])
    assert set(results) == {"<OD>", "<CAPTION>"} and results["<OD>"]["image_size"] == [384, 384]
    assert {"frame", "time", "task", "text", "parsed", "reused", "timings", "shapes", "score", "scores"} <= set(
        results["<OD>"])
    assert all(0 < shape["score"] <= 1 for shape in results["<OD>"]["shapes"])
    stats = view.stats()
    assert {"captured_per_s", "inferred_per_s", "dropped", "reused", "frame_age_s", "rss_mb", "viewers",
            "final_ms", "stages_ms"} <= set(stats)
    assert stats["stages_ms"]["vision"] > 0 and stats["stages_ms"]["step"] > 0


def test_events_stream_partials_and_results(view):
    conn = http.client.HTTPConnection(view.host, view.port, timeout=30)
    conn.request("GET", "/events")
    reply = conn.getresponse()
    assert reply.getheader("Content-Type") == "text/event-stream"
    kinds, seen = [], {}
    while "result" not in kinds or "partial" not in kinds or "stats" not in kinds:
        line = reply.fp.readline().decode().strip()
        if line.startswith("event: "):
            kinds.append(line[7:])
        elif line.startswith("data: ") and kinds:
            seen[kinds[-1]] = json.loads(line[6:])
    conn.close()
    assert {"frame", "task", "piece", "text", "shapes", "growing", "image_size"} <= set(seen["partial"])
    assert seen["result"]["task"] in ("<OD>", "<CAPTION>") and "parsed" in seen["result"]


def test_config_changes_tasks_and_refuses_bad_input(view):
    def post(body, headers=None):
        status, _, data = view.get("/config", {"Content-Type": "application/json", **(headers or {})}, "POST", body)
        return status, json.loads(data)

    assert post(json.dumps({"tasks": ["NOPE"]})) == (400, post(json.dumps({"tasks": ["NOPE"]}))[1])
    assert "unknown task 'NOPE'" in post(json.dumps({"tasks": ["NOPE"]}))[1]["error"]
    assert "needs text input" in post(json.dumps({"tasks": ["CAPTION_TO_PHRASE_GROUNDING"]}))[1]["error"]
    assert "too long" in post(json.dumps({"tasks": ["CAPTION_TO_PHRASE_GROUNDING"], "text": "red " * 200}))[1]["error"]
    assert post("{not json")[0] == 400 and post("[1, 2]")[0] == 400
    assert post(json.dumps({"tasks": 5}))[0] == 400
    assert view.get("/config", {"Content-Length": str(10 ** 7)}, "POST")[0] == 413
    assert post(json.dumps({"tasks": "OD OCR"})) == (200, {"tasks": ["<OD>", "<OCR>"], "text": None})
    deadline = time.monotonic() + 30
    while set(json.loads(view.get("/results")[2])) != {"<OD>", "<OCR>", "<CAPTION>"} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "<OCR>" in json.loads(view.get("/results")[2])
    assert post(json.dumps({"tasks": ["OD", "CAPTION"]}))[0] == 200


def test_config_sets_zones_and_triggers_with_the_command_line_checks(view):
    def post(body):
        status, _, data = view.get("/config", {"Content-Type": "application/json"}, "POST", json.dumps(body))
        return status, json.loads(data)

    left = {"name": "left", "points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}
    status, applied = post({"zones": [left], "triggers": [{"name": "red", "text": "a red circle", "zone": "left"}]})
    assert status == 200 and applied["zones"][0]["name"] == "left" and applied["triggers"][0]["zone"] == "left"
    state = json.loads(view.get("/state")[2])
    assert state["zones"][0]["points"] == left["points"] and state["triggers"]["red"]["text"] == "a red circle"
    for body, message in (({"zones": [{"name": "z", "points": [[0, 0], [1, 1]]}]}, "at least three points"),
                          ({"zones": []}, "unknown zone 'left'"),  # the kept trigger names it
                          ({"triggers": [{"name": "t", "text": ""}]}, "the text to look for is empty"),
                          ({"zones": [{"name": "x", "points": [[0, 0], [1, 1], [1, 0], [0, 1]]}]}, "crosses itself")):
        status, reply = post(body)
        assert status == 400 and message in reply["error"], reply
    assert json.loads(view.get("/state")[2])["zones"][0]["name"] == "left"  # a refused change changes nothing
    assert post({"zones": [], "triggers": []})[0] == 200
    assert json.loads(view.get("/state")[2])["zones"] == []


def test_unknown_paths_and_malformed_requests(view):
    assert view.get("/nope")[0] == 404 and view.get("/../../etc/passwd")[0] == 404
    assert view.get("/static/index.html")[0] == 404  # only routes, never files by path
    assert view.get("/stats", method="DELETE")[0] == 501
    for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\nX: " + b"b" * 70000 + b"\r\n\r\n", b"\x00\xff\x10" * 100):
        with socket.create_connection((view.host, view.port), timeout=30) as sock:
            sock.sendall(raw)
            reply = sock.recv(200)
        # an error status (a request with no version gets HTTP/0.9's bare body) or a dropped connection
        assert reply == b"" or any(code in reply[:200] for code in (b"400", b"414", b"431", b"505")), reply
    assert view.get("/healthz")[0] == 200


def test_stalled_and_many_clients_never_stop_the_loop(view):
    start = view.stats()["inferred"]
    stalled = []
    for path in ["/stream.mjpg"] * 4 + ["/events"] * 3:  # connect, ask, never read
        sock = socket.create_connection((view.host, view.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        stalled.append(sock)
    idle = [socket.create_connection((view.host, view.port)) for _ in range(150)]  # connect, say nothing
    assert _stream_parts(view, "/stream.mjpg", 2)  # the eighth stream still flows
    assert view.get("/stream.mjpg")[0] == 503  # the ninth is refused
    assert all(view.get("/healthz")[0] == 200 for _ in range(30))
    view.wait_inferred(start + 5)  # inference went on meanwhile
    for sock in stalled + idle:
        sock.close()
    deadline = time.monotonic() + 30
    while view.stats()["viewers"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert view.stats()["viewers"] == 0  # stalled viewers were let go


def test_beyond_loopback_a_token_is_required(demo_int8_bundle, scene_video, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    refused = subprocess.run([sys.executable, "-m", "edge.cli", "live", "-m", str(demo_int8_bundle[0]), "--source",
                              str(scene_video), "-t", "OD", "--http", "0.0.0.0:0"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "would open the view to the network: pass --token" in refused.stderr.splitlines()[-1]
    (tmp_path / "token").write_text(TOKEN + "\n")
    running = Running(demo_int8_bundle[0], scene_video, "--token-file", tmp_path / "token")
    try:
        for path in ("/", "/stats", "/snapshot.jpg", "/events", "/stream.mjpg", "/healthz", "/results"):
            assert running.get(path)[0] == 401
            assert running.get(path, {"Authorization": "Bearer wrong"})[0] == 401
        assert running.get("/config", method="POST", body="{}")[0] == 401
        assert running.wait_inferred(1, {"Authorization": f"Bearer {TOKEN}"})["inferred"] >= 1
        assert running.get(f"/healthz?token={TOKEN}")[0] == 200
        assert _stream_parts(running, f"/stream.mjpg?token={TOKEN}", 1)
    finally:
        running.stop()


def test_healthz_says_why_not(demo_int8_bundle, tmp_path, monkeypatch):
    import edge.live.web as web
    from edge.demo.scenes import make_scene
    from edge.live import Live
    from edge.live.sources import open_source
    from edge.model import Florence2

    make_scene(3).image.save(tmp_path / "still.png")
    model = Florence2(demo_int8_bundle[0])
    source = open_source(str(tmp_path / "still.png"))
    view = web.WebView(Live(model, source, ["OD"]), "127.0.0.1", 0)
    host, port = view.address

    def health():
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/healthz")
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read())

    try:
        assert health() == (503, {"ok": False, "reason": "no frame yet"})
        view.on_frame(source.read())
        assert health() == (200, {"ok": True})
        monkeypatch.setattr(web, "FRAMES_STALE", 0.05)
        time.sleep(0.1)
        assert health()[0] == 503 and health()[1]["reason"].startswith("no frame for")
        monkeypatch.setattr(web, "FRAMES_STALE", 5.0)
        model.close()
        assert health() == (503, {"ok": False, "reason": "the model is not loaded"})
    finally:
        view.close()
