"""edge.live.capture: a file read ahead is delivered at its own rate and stamped when delivered."""

import time

import numpy as np

from edge.live.capture import Capture, Mailbox
from edge.live.frames import Frame


class _File:
    """A 5 fps file whose frames decode at once: read ahead, as a file is."""

    fps, live, name = 5.0, False, "clip.mp4"

    def __init__(self, frames: int):
        self.left = frames

    def read(self):
        if not self.left:
            return None
        self.left -= 1
        return Frame(np.zeros((8, 8, 3), np.uint8), 4 - self.left, time.time(), time.monotonic(),
                     stream_time=(4 - self.left) / self.fps)


def test_a_file_frame_is_stamped_when_delivered_not_when_read():
    delivered = []
    capture = Capture(_File(5), Mailbox(), on_frame=lambda f: delivered.append((f, time.monotonic())))
    capture.run()  # in this thread: it returns when the file ends
    assert [f.number for f, _ in delivered] == [0, 1, 2, 3, 4]
    for frame, at in delivered:
        assert at - frame.clock < 0.05  # no wait for its turn counted as latency
    gaps = np.diff([frame.clock for frame, _ in delivered])
    assert np.all(gaps > 0.15) and np.all(gaps < 0.3)  # its own 5 fps, as a camera would deliver it
    assert [f.stream_time for f, _ in delivered] == [0.0, 0.2, 0.4, 0.6, 0.8]  # the file's own time kept
