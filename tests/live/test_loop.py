"""The live loop on a video of held-out scenes: results right in the video's pixels, equal to `run`
on the same decoded frame, the vision graph once per distinct scene; and the CLI end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import HOLD, SEEDS, VIDEO_SIZE

from edge.demo.scenes import caption, iou, make_scene
from edge.live import Live
from edge.model import Florence2

ROOT = Path(__file__).resolve().parents[2]


def _decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _live(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edge.cli", "live", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300, **kw)


def test_every_frame_json_matches_truth_and_run_with_few_vision_runs_per_scene(demo_int8_bundle, scene_video):
    result = _live("-m", demo_int8_bundle[0], "--source", scene_video, "-t", "OD", "-t", "CAPTION",
                   "--every-frame", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    lines = [line for line in lines if "event" not in line]  # the event lines are tested with the events
    assert [(line["frame"], line["task"]) for line in lines] == [
        (f, t) for f in range(len(SEEDS) * HOLD) for t in ("<OD>", "<CAPTION>")]
    stats = json.loads(result.stderr.strip().splitlines()[-1].split(": ", 1)[1])
    # A new scene is encoded; its next frame too while its objects' tracks await a second sighting (a
    # reused frame is no evidence); after that the scene's frames reuse it.
    encoded = sorted({line["frame"] for line in lines if not line["reused"]})
    assert {f for f in range(len(SEEDS) * HOLD) if f % HOLD == 0} <= set(encoded)
    assert all(f % HOLD in (0, 1) for f in encoded) and stats["inferred"] == len(encoded)
    assert stats["reused"] == len(SEEDS) * HOLD - len(encoded) and stats["dropped"] == 0

    model = Florence2(demo_int8_bundle[0])
    frames = _decoded(scene_video)
    scale = VIDEO_SIZE[0] / 256
    for line in lines:
        scene = make_scene(SEEDS[line["frame"] // HOLD])
        assert line["image_size"] == list(VIDEO_SIZE)
        if line["task"] == "<CAPTION>":
            assert line["parsed"] == caption(scene)
        else:
            truth = [[v * scale for v in s.box] for s in scene.shapes]
            assert sorted(line["parsed"]["labels"]) == sorted(s.shape for s in scene.shapes)
            assert all(max(iou(box, t) for t in truth) >= 0.5 for box in line["parsed"]["bboxes"])  # as mAP@0.5
        # An encoded frame equals `run` on it (greedy, as live decodes by default); a reused frame
        # carries the results of the frame whose encoding it reused.
        encoded_frame = max(f for f in encoded if f <= line["frame"])
        ran = model.run(frames[encoded_frame], line["task"], num_beams=1)
        assert line["parsed"] == ran.parsed[line["task"]]


def test_the_api_streams_partials_before_each_result(demo_int8_bundle, scene_video):
    model = Florence2(demo_int8_bundle[0])
    live = Live(model, str(scene_video), ["OD"], every_frame=True, frames=2)
    events = list(live)
    first_result = next(i for i, e in enumerate(events) if e.kind == "result")
    partials = [e for e in events[:first_result] if e.kind == "partial"]
    boxes = [len(e.partial.shapes) for e in partials]
    assert boxes == sorted(boxes) and boxes[0] >= 1  # boxes appear one by one, before the answer ends
    assert len(partials) >= len(events[first_result].partial.shapes)
    assert [e.frame for e in events if e.kind == "result"] == [0, 1]
    stats = live.stats()
    assert stats["inferred"] == 1 and stats["reused"] == 1 and stats["first_shape_ms"]["n"] == 1


def test_scenes_source_demo_and_a_recording(demo_int8_bundle, tmp_path):
    out = tmp_path / "live.mp4"
    result = _live("-m", demo_int8_bundle[0], "--source", "scenes", "-t", "OD", "--frames", "25",
                   "--record", out)
    assert result.returncode == 0, result.stderr[-2000:]
    # Text mode prints an answer when it changes: the scenes hold each picture for 20 frames.
    answers = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("frame ")]
    assert 2 <= len(answers) < 25 and all(a != b for a, b in zip(answers, answers[1:]))
    assert result.stdout.splitlines()[0].startswith("frame 0 <OD>: ")
    assert re.search(r"live: \d+ frames read in [\d.]+ s, \d+ answered, \d+ unchanged", result.stderr.splitlines()[-2])
    frames = _decoded(out)
    assert len(frames) >= 25 and frames[0].shape == (256, 256, 3)
    assert not list(tmp_path.glob(".*"))  # the partial file was renamed into place
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_loop_cleanly_with_exit_0(demo_int8_bundle, tmp_path, sig):
    out = tmp_path / "live.mp4"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "live", "-m", str(demo_int8_bundle[0]), "--source",
                             "scenes", "-t", "OD", "--json", "--record", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().startswith("{")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    assert len(_decoded(out)) >= 1  # the recording was finished, not torn


def test_loop_restarts_a_file_and_keeps_counting(demo_int8_bundle, scene_video):
    result = _live("-m", demo_int8_bundle[0], "--source", scene_video, "-t", "CAPTION", "--every-frame", "--loop",
                   "--frames", len(SEEDS) * HOLD + 4, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(len(SEEDS) * HOLD + 4))
    assert lines[len(SEEDS) * HOLD]["parsed"] == lines[0]["parsed"]  # the file again from its start
