"""The web view's hand-over: a frame is JPEG-encoded once however many viewers ask, only when asked;
a viewer that falls behind loses its oldest events, not the loop's time."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from edge.live.broadcast import EVENT_BACKLOG, EventHub, FrameHub


def test_a_frame_is_encoded_once_for_many_viewers_and_never_unasked():
    renders = []

    def render(picture):
        renders.append(picture)
        return Image.fromarray(picture)

    hub = FrameHub(render)
    frame = np.zeros((64, 64, 3), np.uint8)
    for _ in range(5):
        hub.publish(frame)
    assert hub.encoded == 0  # nobody watched
    barrier = threading.Barrier(6)
    got = []

    def viewer():
        barrier.wait()
        got.append(hub.jpeg(overlay=True))

    threads = [threading.Thread(target=viewer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hub.encoded == 1 and len(renders) == 1 and len({jpeg for _, jpeg in got}) == 1
    hub.jpeg(overlay=False)
    assert hub.encoded == 2  # the clean variant is its own JPEG


def test_a_slow_subscriber_loses_its_oldest_events():
    hub = EventHub()
    slow = hub.subscribe()
    for index in range(EVENT_BACKLOG + 10):
        hub.publish("result", str(index))
    items = slow.take(timeout=0)
    assert len(items) == EVENT_BACKLOG and items[0][1] == "10" and slow.dropped == 10
    hub.unsubscribe(slow)
    assert hub.count == 0
