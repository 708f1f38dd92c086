"""The clip writer on its own: a clip starts on a keyframe and decodes, the ring reaches back
`before` seconds, and a frame the encoder refuses is dropped and said once."""

from __future__ import annotations

import av
import numpy as np

from edge.live.outputs.clips import Clips
from edge.live.outputs.event_files import EventFiles

ID = "1796175253.000001-abcdef"


class Frame:
    def __init__(self, n: int, seconds: float):
        self.image = np.full((48, 64, 3), n * 7 % 256, np.uint8)
        self.seconds = seconds


def decoded(path) -> tuple[list, list[float]]:
    with av.open(str(path)) as clip:
        frames = list(clip.decode(video=0))
        return frames, [float(v) for v in clip.metadata["comment"].split()[2::2]]


def run(clips: Clips, script) -> None:
    clips.start()
    for item in script:
        if isinstance(item, dict):
            clips.on_event(item, None)
        else:
            clips.on_frame(item)
    clips.close()


def test_the_ring_reaches_back_to_the_keyframe_before_the_start(tmp_path):
    said = []
    clips = Clips(EventFiles(tmp_path, 100, 1, "clips"), fps=4, before=1.0, after=0.5, log=said.append)
    frames = [Frame(n, n / 4) for n in range(40)]
    start, end = {"event": "new", "id": ID, "seconds": 5.0}, {"event": "end", "id": ID, "seconds": 7.0}
    bad = Frame(99, 7.1)
    bad.image = np.zeros((48, 64), np.uint8)  # not a picture: the encoder refuses it
    run(clips, frames[:21] + [start] + frames[21:29] + [end, bad] + frames[29:])
    frames_out, (first, last) = decoded(tmp_path / f"{ID}.mp4")
    assert first == 4.0 and last == 7.5, "from the keyframe (one a second) at 4 s to 0.5 s past the end"
    assert len(frames_out) == 15 and frames_out[0].key_frame
    assert clips.counts["dropped"] == 1 and len(said) == 1 and said[0].startswith("clips: ")


def test_a_clip_opened_before_the_first_frame_starts_at_the_first_keyframe(tmp_path):
    clips = Clips(EventFiles(tmp_path, 100, 1, "clips"), fps=4, before=0.0, after=0.0)
    start = {"event": "on", "id": ID, "seconds": 0.0}
    frames = [Frame(n, n / 4) for n in range(9)]
    run(clips, [start] + frames[:5] + [{**start, "event": "off", "seconds": 1.0}] + frames[5:])
    frames_out, (first, last) = decoded(tmp_path / f"{ID}.mp4")
    assert (first, last) == (0.0, 1.0) and frames_out[0].key_frame and len(frames_out) == 5
