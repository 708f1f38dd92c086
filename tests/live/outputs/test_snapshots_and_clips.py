"""`--snapshots` and `--clips` on a held-out video: the best frame of each event as JPEG, an MP4 whose
frames span the event, both named in its JSON and served under /events/<id>/ with the view's token."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "t0ken"
BEFORE, AFTER = 1.0, 1.0


def get(base: str, path: str, token: str | None = TOKEN) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(base: str, path: str, timeout: float = 60.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = get(base, path)
        if status == 200:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{path} never came")


def test_snapshots_and_clips_per_event(demo_int8_bundle, walking_clip, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "live", "-m", str(demo_int8_bundle[0]), "--source", str(walking_clip),
         "-t", "OD", "--loop", "--events-only", "--track-expire", "1", "--http", "127.0.0.1:0", "--token", TOKEN,
         "--snapshots", str(tmp_path / "snaps"), "--clips", str(tmp_path / "clips"), "--clip-before", str(BEFORE),
         "--clip-after", str(AFTER)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "self-test passed" in proc.stderr.readline()
        base = re.search(r"web view on (http://\S+)/", proc.stderr.readline()).group(1)
        events = []
        while not any(e["event"] == "end" and e["name"] == "square" for e in events):
            events.append(json.loads(proc.stdout.readline()))
        new = next(e for e in events if e["event"] == "new" and e["name"] == "square")
        end = next(e for e in events if e["event"] == "end" and e["id"] == new["id"])
        assert end["snapshot"] == f"/events/{new['id']}/snapshot.jpg" and end["clip"] == f"/events/{new['id']}/clip.mp4"

        drawn = Image.open(io.BytesIO(wait_for(base, new["snapshot"])))
        clean = Image.open(io.BytesIO(wait_for(base, f"/events/{new['id']}/snapshot-clean.jpg")))
        assert drawn.format == clean.format == "JPEG" and drawn.size == clean.size == (256, 256)
        assert drawn.tobytes() != clean.tobytes(), "the overlay is drawn on one of them"

        clip = av.open(io.BytesIO(wait_for(base, new["clip"])))
        first, last = map(float, re.findall(r"[\d.]+", clip.metadata["comment"]))
        frames = list(clip.decode(video=0))
        assert first <= max(0.0, new["seconds"] - BEFORE) and last >= end["seconds"] + AFTER
        assert first > new["seconds"] - BEFORE - 1.5, "it starts at the keyframe before, not earlier"
        assert frames[-1].time - frames[0].time == last - first and len(frames) == round((last - first) * 2) + 1

        assert get(base, new["clip"], token=None)[0] == 401
        assert get(base, "/events/1796175253.000000-abcdef/clip.mp4")[0] == 404
        outputs = json.loads(get(base, "/stats")[1])["outputs"]
        assert outputs["clips"]["written"] >= 1 and outputs["snapshots"]["written"] >= 2
        assert outputs["clips"]["dropped"] == outputs["snapshots"]["dropped"] == 0
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert not [p for p in (tmp_path / "clips").iterdir() if p.name.startswith(".")], "no partial file is left"
