"""`--record`: the annotated video written whole; on a full card (a real one, filled up) the
recording stops, said once, nothing half-written kept, and the loop's writes go on returning."""

from __future__ import annotations

import numpy as np
from PIL import Image

from edge.live.record import Recorder
from edge.live.video import _av


def _frames(n: int, seed: int = 0):
    noise = np.random.default_rng(seed)
    return [Image.fromarray(noise.integers(0, 255, (240, 320, 3), np.uint8)) for _ in range(n)]


def test_a_recording_is_a_playable_file_of_every_frame(tmp_path):
    recorder = Recorder(tmp_path / "out.mp4", 10)
    for frame in _frames(12):
        recorder.write(frame)
    recorder.close()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    with _av().open(str(tmp_path / "out.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 12


def test_a_full_card_stops_the_recording_once_and_keeps_nothing_torn(small_card):
    said = []
    recorder = Recorder(small_card / "out.mp4", 10, log=said.append)
    for frame in _frames(60):  # noise compresses badly: 256 kB fill within a few frames
        recorder.write(frame)
    recorder.close()
    assert list(small_card.iterdir()) == []
    assert len(said) == 1 and said[0].startswith(f"--record {small_card / 'out.mp4'}: cannot write (No space left "
                                                 "on device): recording stopped after"), said
