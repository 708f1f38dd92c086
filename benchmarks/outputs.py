"""What events out cost on this machine: what the loop spends handing one event to each output
(it only queues), and what the outputs' own threads spend (a snapshot pair's JPEGs, the clip
encoder per frame, muxing a clip), at the size of the picture the model sees on a board.

    python -m benchmarks.outputs [--size 768x432] [--rounds 5] [--events 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edge.live.outputs.clips import Clips
from edge.live.outputs.event_files import EventFiles
from edge.live.outputs.fanout import Outputs
from edge.live.outputs.mqtt import MqttOutput, MqttSettings
from edge.live.outputs.snapshots import Snapshots
from edge.live.outputs.webhook import Webhook, WebhookSettings

TRACK = {"id": "", "label": "person", "task": "<OD>", "box": [120.0, 80.0, 260.0, 400.0], "area": 44800.0,
         "score": 0.91, "top_score": 0.93, "start_time": 1796175253.9, "end_time": None, "seconds": 1.5,
         "current_zones": ["door"], "entered_zones": ["door"], "hits": 4}


def event(n: int, seconds: float) -> dict:
    """A `new` event as the loop makes it, a new id each time (so snapshots keep every one)."""
    event_id = f"1796175253.{n:06d}-abcdef"
    after = {**TRACK, "id": event_id}
    return {"event": "new", "id": event_id, "camera": "porch", "time": 1796175253.9 + n, "clock_set": True,
            "seconds": seconds, "frame": n, "name": "person", "label": "person", "box": after["box"], "score": 0.91,
            "zones": ["door"], "before": None, "after": after}


def picture(size, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.BILINEAR))  # smooth, as a camera's picture


def handover(make, events: int, rounds: int, pic) -> float:
    """Median microseconds of `Outputs.event` per event for outputs `make(folder)` (not started: the
    queue is what the loop touches; a full queue would only make it cheaper)."""
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            outputs = Outputs(make(Path(folder)))
            for n in range(events):
                begun = time.perf_counter()
                outputs.event(event(n, n * 0.1), pic)
                times.append((time.perf_counter() - begun) * 1e6)
    return round(statistics.median(times), 1)


def writers(size, frames: int, pic) -> dict:
    """The outputs' own threads: a snapshot pair, the clip encoder per frame, a clip's muxing."""
    with tempfile.TemporaryDirectory() as folder:
        files = EventFiles(Path(folder), 1000, 1, "bench")
        snapshots = Snapshots(files, lambda p: Image.fromarray(p))
        pair = []
        for n in range(10):
            begun = time.perf_counter()
            snapshots._queue.put((f"1796175253.{n:06d}-abcdef", pic))
            snapshots._queue.put(None)
            snapshots._write()
            pair.append((time.perf_counter() - begun) * 1e3)
        clips = Clips(files, fps=10)
        pictures = [picture(size, n) for n in range(8)]
        encode = []
        for n in range(frames):
            begun = time.perf_counter()
            clips._encode(pictures[n % len(pictures)], n / 10)
            encode.append((time.perf_counter() - begun) * 1e3)
        clips._start("1796175253.000000-abcdef", 0.0)
        begun = time.perf_counter()
        clips._write("1796175253.000000-abcdef")
        mux = (time.perf_counter() - begun) * 1e3
        size_kb = sum(p.stat().st_size for p in Path(folder).glob("*.mp4")) / 1e3
    return {"snapshot_pair_ms": round(statistics.median(pair), 1),
            "clip_encode_ms_per_frame": round(statistics.median(encode[5:]), 2),
            "clip_mux_ms": round(mux, 1), "clip_seconds": frames / 10, "clip_kb": round(size_kb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="768x432")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    pic = picture(size)
    makers = {
        "webhook": lambda folder: [Webhook(WebhookSettings("http://127.0.0.1:9/hook", secret="s"))],
        "snapshots": lambda folder: [Snapshots(EventFiles(folder, 1000, 1, "bench"), Image.fromarray)],
        "clips": lambda folder: [Clips(EventFiles(folder, 1000, 1, "bench"), 10)],
        "mqtt": lambda folder: [MqttOutput(MqttSettings("mqtt://127.0.0.1:9"), "porch", {}, {})],
    }
    each = list(makers.values())
    makers["all"] = lambda folder: [o for make in each for o in make(folder)]
    report = {"size": list(size), "handover_us_per_event": {name: handover(make, args.events, args.rounds, pic)
                                                            for name, make in makers.items()},
              "writers": writers(size, 100, pic)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
