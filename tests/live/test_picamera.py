"""The picamera2 source against a stand-in implementing the subset of picamera2's API it uses
(named in tests/live/standin/picamera2): lores for the model, results mapped to main and drawn
there in pre_callback, a camera that is missing, and one that goes away and comes back."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.demo.scenes import iou, make_scene
from edge.errors import FlorenceEdgeError
from edge.live import Live
from edge.live.overlay import draw_into
from edge.live.picamera import lores_size, yuv420_to_rgb
from edge.model import Florence2

STANDIN = Path(__file__).parent / "standin"
SEED = 1_000_021


@pytest.fixture
def picamera2(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDIN))
    sys.modules.pop("picamera2", None)
    import picamera2

    monkeypatch.setattr(picamera2, "SCENE", lambda number: make_scene(SEED).image)
    monkeypatch.setattr(picamera2, "UNPLUGGED", False)
    yield picamera2
    sys.modules.pop("picamera2", None)


def test_lores_keeps_the_main_aspect_within_the_model_size():
    assert lores_size((768, 768)) == (768, 432)
    assert lores_size((256, 256)) == (256, 144)


def test_yuv420_planes_convert_back_to_the_picture(picamera2):
    from edge.demo.scenes import COLOURS

    for rgb in COLOURS.values():  # flat colours survive the round trip to within rounding
        flat = np.full((16, 16, 3), rgb, np.uint8)
        assert np.abs(yuv420_to_rgb(picamera2._yuv420(flat), (16, 16)).astype(int) - flat).max() <= 2
    scene = np.asarray(make_scene(SEED).image.resize((256, 144)))
    back = yuv420_to_rgb(picamera2._yuv420(scene), (256, 144))
    assert np.abs(back.astype(int) - scene).mean() < 8  # only subsampled chroma blurs edges and noise


def test_results_come_from_lores_and_are_drawn_on_main(picamera2, demo_int8_bundle):
    model = Florence2(demo_int8_bundle[0])
    mains = []
    live = Live(model, "picamera2", ["OD"], frames=3, change_threshold=0)
    # As the command does: draw in pre_callback, so a preview or recording of main carries it.
    live.source.on_main = lambda array: (draw_into(array, live.overlay, bgr=True), mains.append(array.copy()))
    events = [e for e in live if e.kind == "result"]
    assert live.source.lores == (192, 108)  # the demo model takes 192 px: lores is 192 x 108, 16:9 as main
    assert events[0].image_size == (1280, 720)  # results are in main's pixels
    sx, sy = 1280 / 256, 720 / 256
    scaled = [[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in (s.box for s in make_scene(SEED).shapes)]
    assert all(max(iou(box, t) for t in scaled) >= 0.5 for box in events[0].partial.parsed["bboxes"])
    # Later main frames carry the boxes, drawn in pre_callback (the overlay knew the results by then).
    plain = np.asarray(make_scene(SEED).image.resize((1280, 720)))[:, :, ::-1]
    assert np.abs(mains[-1].astype(int) - plain).sum(axis=2).max() > 100
    assert not picamera2.opened  # released at the end


def test_no_camera_is_one_line(picamera2, demo_int8_bundle, monkeypatch):
    monkeypatch.setattr(picamera2, "CAMERAS", 0)
    model = Florence2(demo_int8_bundle[0])
    with pytest.raises(FlorenceEdgeError, match="no camera 0 for picamera2"):
        Live(model, "picamera2", ["OD"])


def test_without_picamera2_says_how_to_get_it(demo_int8_bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails, as on a machine without it
    model = Florence2(demo_int8_bundle[0])
    with pytest.raises(FlorenceEdgeError, match="sudo apt install python3-picamera2"):
        Live(model, "picamera2", ["OD"])


def test_a_camera_that_goes_away_comes_back_by_itself(picamera2, demo_int8_bundle, monkeypatch):
    import edge.live.capture as capture
    import edge.live.picamera as source

    monkeypatch.setattr(capture, "_BACKOFF", (0.05,))
    monkeypatch.setattr(source, "_TIMEOUT", 0.1)
    model = Florence2(demo_int8_bundle[0])
    lines, no_signal = [], []
    live = Live(model, "picamera2", ["CAPTION"], change_threshold=0, frames=6, log=lines.append,
                on_frame=lambda frame: no_signal.append(frame is None))
    seen = []
    for event in live:
        if event.kind != "result":
            continue
        seen.append(event.frame)
        if len(seen) == 2:
            picamera2.UNPLUGGED = True
            threading.Timer(0.6, lambda: setattr(picamera2, "UNPLUGGED", False)).start()
    assert len(seen) == 6
    assert any(no_signal) and sum(1 for line in lines if "retrying" in line) == 1
    assert any("is back after" in line for line in lines)
    assert live.stats()["outages"] == 1 and live.stats()["outage_seconds"] > 0.3


def test_clips_take_the_cameras_own_h264(picamera2, tmp_path):
    from edge.live.frames import CameraSettings
    from edge.live.outputs.clips import Clips
    from edge.live.outputs.event_files import EventFiles
    from edge.live.picamera import PicameraSource

    source = PicameraSource(0, (192, 192), CameraSettings())
    clips = Clips(EventFiles(tmp_path, 100, 1, "clips"), fps=10, before=0.2, after=0.2)
    clips.use_camera_encoder(source)
    clips.start()
    seen = [source.read() for _ in range(15)]
    start = {"event": "new", "id": "1796175253.000001-abcdef", "seconds": seen[-1].seconds}
    clips.on_event(start, None)
    seen += [source.read() for _ in range(10)]
    clips.on_event({**start, "event": "end", "seconds": seen[-1].seconds}, None)
    seen += [source.read() for _ in range(15)]
    clips.close()
    source.close()
    import av
    with av.open(str(tmp_path / f"{start['id']}.mp4")) as clip:
        frames = list(clip.decode(video=0))
        first, last = map(float, clip.metadata["comment"].split()[2::2])
    assert (frames[0].width, frames[0].height) == (192, 108) and clips.counts["written"] == 1
    period = max(b.seconds - a.seconds for a, b in zip(seen, seen[1:]))
    assert first <= start["seconds"] - 0.2 and last >= seen[24].seconds + 0.2 - period  # the last frame before
    # the sensor stamps a frame a little before the application reads it: one frame either way
    assert abs(len(frames) - sum(first <= f.seconds <= last for f in seen)) <= 1
