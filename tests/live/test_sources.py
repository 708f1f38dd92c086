"""Frame sources and the capture thread: what each spec opens, bad sources in one line, corrupt
frames skipped and counted, the newest frame winning, unchanged scenes recognised."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
from conftest import HOLD, SEEDS, VIDEO_SIZE, write_video
from PIL import Image

from edge.demo.scenes import make_scene
from edge.errors import FlorenceEdgeError
from edge.live.capture import Capture, Mailbox
from edge.live.change import ChangeDetector
from edge.live.sources import ImageSource, ScenesSource, open_source
from edge.live.video import VideoSource


def test_specs_open_the_right_source(tmp_path, scene_video):
    for i in range(3):
        make_scene(i).image.save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert isinstance(open_source("scenes"), ScenesSource)
    assert open_source("scenes:42").seed == 42
    folder = open_source(str(tmp_path))
    assert isinstance(folder, ImageSource) and len(folder.paths) == 3
    assert len(open_source(str(tmp_path / "*.png")).paths) == 3
    assert len(open_source(str(tmp_path / "1.png")).paths) == 1
    video = open_source(str(scene_video))
    assert isinstance(video, VideoSource) and video.fps == 10 and not video.live


@pytest.mark.parametrize("spec, message", [
    ("", "--source is empty"),
    ("nowhere.mp4", "source not found: nowhere.mp4"),
    ("/dev/video99", "cannot open /dev/video99"),
    ("99", "cannot open /dev/video99"),
    ("rtsp://127.0.0.1:9/none", "cannot open rtsp://127.0.0.1:9/none"),
])
def test_sources_that_cannot_open_are_one_line(spec, message):
    with pytest.raises(FlorenceEdgeError, match=message):
        open_source(spec)


def test_a_file_that_is_not_a_video_and_an_empty_folder(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(FlorenceEdgeError, match="cannot open .*clip.mp4"):
        open_source(str(tmp_path / "clip.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FlorenceEdgeError, match="no images in"):
        open_source(str(tmp_path / "empty"))


def test_video_frames_are_numbered_from_0_in_the_videos_pixels(scene_video):
    source = open_source(str(scene_video))
    frames = [source.read() for _ in range(len(SEEDS) * HOLD)]
    assert [f.number for f in frames] == list(range(len(SEEDS) * HOLD))
    assert frames[0].size == VIDEO_SIZE and frames[0].image.dtype == np.uint8
    assert source.read() is None
    source.rewind()
    assert source.read().number == len(SEEDS) * HOLD  # --loop keeps counting
    source.close()


def test_corrupt_packets_are_skipped_and_counted(tmp_path):
    path = tmp_path / "clip.mkv"
    write_video(path, SEEDS, 10, size=(128, 128))
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for start in rng.integers(len(data) // 3, len(data) - 500, 6):
        data[start:start + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    source = open_source(str(path))
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert 0 < len(frames) < 40 and all(f.image.shape == (128, 128, 3) for f in frames)
    assert len(frames) + source.skipped == frames[-1].number + 1  # what was lost is counted, the rest plays
    assert [f.number for f in frames] == sorted({f.number for f in frames})  # each keeps its place in the file


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"broken")
    source = open_source(str(tmp_path))
    assert source.read().number == 0 and source.read() is None and source.skipped == 1


def test_the_mailbox_keeps_the_newest_and_counts_the_dropped():
    box = Mailbox()
    for n in range(5):
        box.put(n)
    assert box.take() == 4 and box.dropped == 4
    box.close()
    assert box.take() is None


def test_every_frame_waits_for_the_reader_and_drops_nothing(scene_video):
    box = Mailbox()
    capture = Capture(open_source(str(scene_video)), box, every_frame=True)
    capture.start()
    taken = []
    while (frame := box.take()) is not None:
        time.sleep(0.01)  # a slow model
        taken.append(frame.number)
    assert taken == list(range(len(SEEDS) * HOLD)) and box.dropped == 0 and capture.error is None


def test_a_file_plays_at_its_own_rate_and_a_slow_reader_sees_only_the_newest(tmp_path):
    path = tmp_path / "fast.mp4"
    write_video(path, SEEDS, 5, size=(64, 64), fps=50)  # 20 frames, 0.4 s
    box = Mailbox()
    capture = Capture(open_source(str(path)), box)
    start = time.monotonic()
    capture.start()
    taken = []
    while (frame := box.take()) is not None:
        time.sleep(0.1)
        taken.append(frame.number)
    assert 0.35 < time.monotonic() - start < 1.5
    assert len(taken) < 10 and box.dropped + len(taken) == 20 and taken == sorted(taken)


def test_an_error_in_the_capture_thread_reaches_the_reader():
    class Broken(ScenesSource):
        def read(self):
            raise FlorenceEdgeError("cannot convert its bayer frames to RGB")

    box = Mailbox()
    capture = Capture(Broken(), box)
    capture.start()
    assert box.take() is None
    capture.join(1)
    assert isinstance(capture.error, FlorenceEdgeError)


def test_noise_is_no_change_and_another_scene_is():
    source = ScenesSource(seed=5, fps=1000, hold=3)
    detector = ChangeDetector()
    flags = [detector.changed(source.read().image) for _ in range(9)]
    assert flags == [True, False, False] * 3
    assert all(ChangeDetector(0).changed(source.read().image) for _ in range(3))
    with pytest.raises(FlorenceEdgeError, match="between 0 and 1"):
        ChangeDetector(2)


def test_scenes_pace_like_a_camera():
    source = ScenesSource(fps=20)
    start = time.monotonic()
    for _ in range(5):
        source.read()
    assert time.monotonic() - start >= 0.18


def test_a_stream_that_ends_is_retried_and_resumes(tmp_path, monkeypatch):
    """An MPEG-TS stream over HTTP, served here: when it ends (as a camera's stream drops) the loop
    logs it once, reopens, and frames come again."""
    import functools
    import http.server

    scene_video = tmp_path / "live.ts"  # a format that streams without seeking, as cameras send
    write_video(scene_video, SEEDS, HOLD)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = open_source(f"http://127.0.0.1:{server.server_port}/{scene_video.name}")
        assert source.live and source.fps is None
        box, lines = Mailbox(), []
        capture = Capture(source, box, every_frame=True, log=lines.append)
        monkeypatch.setattr("edge.live.capture._BACKOFF", (0.05,))
        capture.start()
        numbers = [box.take(timeout=30).number for _ in range(len(SEEDS) * HOLD + 5)]
        capture.stop()
    finally:
        server.shutdown()
    assert numbers == list(range(len(numbers)))  # a live source keeps counting across the outage
    assert len(capture.outages) >= 1 and lines[0].endswith("ended; retrying until it is back")
    assert any("is back after" in line for line in lines)


def test_live_follows_a_network_camera_that_goes_away_and_comes_back(rtsp_camera, demo_int8_bundle, tmp_path):
    """`live` on a real RTSP server (GStreamer's, H.264 over TCP, a password asked): the server is
    killed mid-stream and started again on the same port; the loop says so once, reconnects, and
    answers again. The password, from its file, is never shown."""
    import json
    import subprocess
    import sys

    from expect import ROOT

    password = tmp_path / "camera-password"
    password.write_text(rtsp_camera.password + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "live", "-m", str(demo_int8_bundle[0]), "--source", rtsp_camera.url,
         "--source-password-file", str(password), "-t", "CAPTION", "--json", "--frames", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT)
    answers, said = [], []
    readers = [threading.Thread(target=lambda: answers.extend(map(json.loads, proc.stdout)), daemon=True),
               threading.Thread(target=lambda: said.extend(proc.stderr), daemon=True)]
    for reader in readers:
        reader.start()

    def wait_for(what, predicate):
        deadline = time.monotonic() + 60
        while not predicate():
            assert proc.poll() is None and time.monotonic() < deadline, f"no {what}: {said[-5:]}"
            time.sleep(0.05)

    try:
        wait_for("answers", lambda: len(answers) >= 40)  # past the frames FFmpeg buffers while it probes
        rtsp_camera.stop()
        wait_for("outage line", lambda: any("retrying until it is back" in line for line in said))
        lost_at = len(answers)
        rtsp_camera.start()
        back = time.time()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    for reader in readers:
        reader.join(10)
    assert proc.returncode == 0 and not any("Traceback" in line for line in said), said[-10:]
    assert sum("retrying until it is back" in line for line in said) == 1  # an outage is logged once
    shown = rtsp_camera.url.replace("viewer@", "viewer:***@")
    assert any(f"{shown} is back after" in line for line in said), said
    assert not any(rtsp_camera.password in line for line in said) and rtsp_camera.password not in json.dumps(answers)
    numbers = [answer["frame"] for answer in answers]
    assert len(answers) == 100 and lost_at < 100 and numbers == sorted(set(numbers))
    assert sum(answer["time"] > back for answer in answers) >= 10 and answers[-1]["text"]  # from the camera back
    stats = json.loads(said[-1].split(": ", 1)[1])
    assert stats["outages"] == 1 and stats["outage_seconds"] > 0


def test_a_wrong_or_missing_camera_password_is_one_line(rtsp_camera, tmp_path):
    from edge.live.frames import CameraSettings

    wrong = tmp_path / "wrong"
    wrong.write_text("guess\n")
    shown = rtsp_camera.url.replace("viewer@", "viewer:***@")
    with pytest.raises(FlorenceEdgeError, match=f"cannot open {re.escape(shown)}: .*401 Unauthorized"):
        open_source(rtsp_camera.url, camera=CameraSettings(password_file=str(wrong)))
    with pytest.raises(FlorenceEdgeError, match="cannot read --source-password-file .*nowhere: No such file"):
        open_source(rtsp_camera.url, camera=CameraSettings(password_file=str(tmp_path / "nowhere")))
    with pytest.raises(FlorenceEdgeError, match="needs the user in the URL: rtsp://USER@127.0.0.1"):
        open_source(rtsp_camera.url.replace("viewer@", ""), camera=CameraSettings(password_file=str(wrong)))
    with pytest.raises(FlorenceEdgeError, match="--source-password-file is for network cameras"):
        open_source("scenes", camera=CameraSettings(password_file=str(wrong)))


def test_a_cameras_password_is_not_shown():
    with pytest.raises(FlorenceEdgeError) as failed:
        open_source("rtsp://admin:s3cret@127.0.0.1:9/stream1")
    assert str(failed.value).startswith("cannot open rtsp://admin:***@127.0.0.1:9/stream1")
    assert "s3cret" not in str(failed.value)
