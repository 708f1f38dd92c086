"""What the live loop costs on top of the model, and how soon results show.

    python benchmarks/live_loop.py -m build/demo-bundle -t OD --frames 40

One run: writes a video of held-out scenes and decodes it, then side by side on the same
decoded frames (1) the model alone (`encode` + `stream` per frame, what `run` does) and (2)
`Live` with `every_frame` and change detection off, so both do the same model work and the
difference is the loop's own (capture thread, hand-off, thumbnails, partial parsing, overlay
updates). Reports that overhead, frames inferred per second, capture -> first drawable shape,
frame taken up -> first shape against vision + text encoder + 5 decoder steps, capture ->
final result (median, p90), and what the overlay and a JPEG of it cost per frame at
1280x720. Then the scene generator as a 10 fps camera (newest frame wins, change detection
on): inferred, reused and dropped frames.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.demo.scenes import make_scene  # noqa: E402
from edge.live import Live  # noqa: E402
from edge.live.frames import Frame, Source  # noqa: E402
from edge.live.incremental import IncrementalParser  # noqa: E402
from edge.live.overlay import Overlay  # noqa: E402
from edge.model import Florence2  # noqa: E402


def write_video(path: Path, frames: int, hold: int, size=(384, 384), fps: int = 10) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for index in range(frames):
            image = make_scene(2_000_000 + index // hold).image.resize(size)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


class DecodedFrames(Source):
    """Frames decoded beforehand: the loop's work without the video decoding, as the model alone sees it."""

    name = "decoded frames"

    def __init__(self, frames):
        self.frames = list(frames)
        self.next = 0

    def read(self) -> Frame | None:
        if self.next == len(self.frames):
            return None
        self.next += 1
        return Frame(self.frames[self.next - 1], self.next - 1, time.time(), time.monotonic())


def model_alone(model: Florence2, frames, tasks, **options) -> tuple[float, list]:
    """Seconds for what `run` does on every frame (vision once, each task streamed to the end), and
    each frame's first task's timings."""
    timings = []
    start = time.perf_counter()
    for image in frames:
        encoded = model.encode(image)
        for index, task in enumerate(tasks):
            for event in model.stream(encoded, task, **options):
                if event.result is not None and index == 0:
                    timings.append(event.result.timings)
    return time.perf_counter() - start, timings


def live_loop(model: Florence2, frames, tasks, **options) -> tuple[float, dict]:
    live = Live(model, DecodedFrames(frames), tasks, every_frame=True, change_threshold=0, **options)
    start = time.perf_counter()
    for _ in live:
        pass
    return time.perf_counter() - start, live.stats()


def with_viewers(model: Florence2, frames, tasks, viewers: int, **options) -> tuple[float, int]:
    """(frames inferred per second, JPEGs made) of `Live` serving the web view to `viewers` MJPEG
    viewers (with the overlay) that read as fast as they can."""
    import http.client
    import threading

    from edge.live.command import event_payload
    from edge.live.web import WebView

    live = Live(model, DecodedFrames(frames), tasks, every_frame=True, change_threshold=0, **options)
    view = WebView(live, "127.0.0.1", 0)
    live.on_frame = view.on_frame
    done = threading.Event()

    def watch():
        conn = http.client.HTTPConnection(*view.address, timeout=30)
        conn.request("GET", "/stream.mjpg")
        reply = conn.getresponse()
        while not done.is_set() and reply.read(65536):
            pass
        conn.close()

    watchers = [threading.Thread(target=watch, daemon=True) for _ in range(viewers)]
    for watcher in watchers:
        watcher.start()
    time.sleep(0.5)
    start = time.perf_counter()
    for event in live:
        view.on_event(event.kind, event_payload(event))
    elapsed = time.perf_counter() - start
    done.set()
    view.close()
    return live.counts["inferred"] / elapsed, view.frames.encoded


def overlay_cost(model: Florence2, image: np.ndarray, tasks, reps: int = 30, **options) -> tuple[float, float]:
    """ms per 1280x720 frame: drawing every task's final answer, then JPEG (quality 80)."""
    overlay = Overlay(tasks)
    encoded = model.encode(image)
    for task in tasks:
        result = model.run(encoded, task, **options)
        parser = IncrementalParser(model, result.task, (image.shape[1], image.shape[0]))
        overlay.update(parser.finish(result.parsed), (image.shape[1], image.shape[0]), time.monotonic())
    overlay.status = "0.50 inferred/s · latency 2000 ms · reused 3 · dropped 12"
    frame = np.asarray(make_scene(7).image.resize((1280, 720)))
    draw, jpeg = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        canvas = overlay.render(frame)
        t1 = time.perf_counter()
        canvas.save(io.BytesIO(), format="JPEG", quality=80)
        t2 = time.perf_counter()
        draw.append((t1 - t0) * 1e3)
        jpeg.append((t2 - t1) * 1e3)
    return statistics.median(draw), statistics.median(jpeg)


def camera(model: Florence2, tasks, frames: int, **options) -> dict:
    live = Live(model, "scenes", tasks, frames=frames, **options)
    for _ in live:
        pass
    return live.stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("-t", "--task", action="append", default=None)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--hold", type=int, default=4)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="cap answers (random weights never stop)")
    parser.add_argument("--beams", type=int, default=1, help="as `live`: greedy unless asked")
    args = parser.parse_args()
    options = dict(max_new_tokens=args.max_new_tokens, num_beams=args.beams)
    tasks = args.task or ["OD"]
    model = Florence2(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "scenes.mp4"
        write_video(video, args.frames, args.hold)
        frames = decoded(video)
    model_alone(model, frames[:2], tasks, **options)  # warm: weights packed, signatures bound
    alones, loops = [], []
    for _ in range(args.reps):  # alternated, so drifts in machine speed hit both alike
        alone, timings = model_alone(model, frames, tasks, **options)
        looped, stats = live_loop(model, frames, tasks, **options)
        alones.append(alone)
        loops.append(looped)
    alone, looped = statistics.median(alones), statistics.median(loops)
    draw_ms, jpeg_ms = overlay_cost(model, frames[0], tasks, **options)
    rates = {0: [], 2: []}
    for _ in range(args.reps):  # alternated, medians
        for viewers in rates:
            rates[viewers].append(with_viewers(model, frames, tasks, viewers, **options))
    cam = camera(model, tasks, args.frames, **options)
    target = statistics.median(t.vision_ms + t.encoder_ms + 5 * t.decode_ms / max(t.tokens, 1) for t in timings)
    print(f"bundle {args.model}, tasks {' '.join(tasks)}, {len(frames)} frames of 384x384")
    print(f"model alone {alone:.3f} s, live loop {looped:.3f} s (medians of {args.reps}): "
          f"overhead {100 * (looped / alone - 1):+.1f}%")
    print(f"inferred/s {stats['inferred_per_s']:.2f}; capture -> first shape {stats['first_shape_ms']}; "
          f"capture -> final {stats['final_ms']}")
    print(f"frame taken up -> first shape {stats['work_to_first_shape_ms']}; vision + text encoder + 5 steps "
          f"{target:.1f} ms (median)")
    print(f"overlay {draw_ms:.1f} ms + JPEG {jpeg_ms:.1f} ms per 1280x720 frame (median of 30)")
    print(f"scenes camera, 10 fps: {cam}")
    none, two = (statistics.median(r for r, _ in rates[v]) for v in (0, 2))
    print(f"web view: {none:.2f} frames inferred/s with no viewer, {two:.2f} with two MJPEG viewers "
          f"({100 * (two / none - 1):+.1f}%); JPEGs made with two viewers: {rates[2][0][1]} for {len(frames)} frames")


if __name__ == "__main__":
    main()
