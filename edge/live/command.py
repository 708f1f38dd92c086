"""`florence-edge live`: a camera, stream, video or the scene generator through the model, results as they decode.

stdout: with `--json`, one JSON line per finished frame x task; otherwise a line per result.
stderr: notices (outages), and the loop's figures at the end. Ctrl-C or SIGTERM stops it cleanly
(camera released, recording finished) with exit 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from PIL import Image

from edge.live.change import DEFAULT_THRESHOLD
from edge.live.loop import Live, LiveEvent
from edge.live.overlay import draw_into
from edge.live.record import Recorder, check_target
from edge.model import Florence2
from edge.run import _region
from edge.runtime import add_runtime_argument


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, help="bundle directory")
    parser.add_argument("--source", required=True,
                        help="scenes | picamera2 | /dev/videoN or N | video file | image, folder or glob | "
                             "rtsp://... or http://... stream")
    parser.add_argument("-t", "--task", action="append", required=True, help="task, as in `run` (repeatable)")
    parser.add_argument("--text", help="text input for tasks that take one")
    parser.add_argument("--region", type=_region, help="pixel box x1,y1,x2,y2 for REGION_TO_* tasks")
    parser.add_argument("--json", action="store_true", help="one JSON line per finished frame and task")
    parser.add_argument("--every-frame", action="store_true",
                        help="process every frame in order (recordings); default: the newest frame wins")
    parser.add_argument("--loop", action="store_true", help="restart a video file or image list at its end")
    parser.add_argument("--frames", type=int, help="stop after this many frames with results (reused ones count)")
    parser.add_argument("--record", metavar="OUT.mp4", help="write the annotated video")
    parser.add_argument("--force", action="store_true", help="let --record replace an existing file")
    parser.add_argument("--change-threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="below this thumbnail difference (0-1) a frame reuses the last results; 0: never "
                             f"(default {DEFAULT_THRESHOLD})")
    parser.add_argument("--stale-after", type=float, default=5.0,
                        help="seconds after which the overlay dims a result (default 5)")
    parser.add_argument("--beams", type=int, default=1,
                        help="beam width (default 1, greedy: boxes show after a few tokens; with beams, only once "
                             "every beam agrees, and each step costs a decoder step per beam)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: the CPUs this process may use)")
    add_runtime_argument(parser)


def event_json(event: LiveEvent) -> dict:
    """The `--json` line of a finished frame x task (`timings` null when the frame reused results)."""
    return {"frame": event.frame, "time": round(event.time, 3), "task": event.task, "text": event.result.text,
            "parsed": event.partial.parsed, "image_size": list(event.image_size), "reused": event.reused,
            "timings": None if event.reused else vars(event.result.timings)}


def _stop_on_sigterm() -> None:
    # systemd and `kill` send SIGTERM: stop as Ctrl-C does, through the same clean-up.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def main(args: argparse.Namespace) -> int:
    recorder_target = check_target(args.record, args.force) if args.record else None
    model = Florence2(args.model, num_threads=args.threads, runtime=args.runtime)
    live = Live(model, args.source, args.task, args.text, args.region, args.every_frame, args.loop,
                args.change_threshold, args.frames, args.beams, args.max_new_tokens, stale_after=args.stale_after)
    recorder = Recorder(recorder_target, live.source.fps or 10.0, args.force) if recorder_target else None
    _attach_overlay(live, recorder)
    _stop_on_sigterm()
    try:
        for event in live:
            if event.kind == "result":
                _print(event, args.json)
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: a normal way to end a live loop
    finally:
        live.stop()
        if recorder is not None:
            recorder.close()
    print(f"florence-edge live: {json.dumps(live.stats())}", file=sys.stderr)
    return 0


def _attach_overlay(live: Live, recorder: Recorder | None) -> None:
    """Draw results onto the source's own frames where it has a hook (picamera2's pre_callback: the
    preview and any recording carry them) and onto what is recorded."""
    drawn_by_source = hasattr(live.source, "on_main")
    if drawn_by_source:
        live.source.on_main = lambda array: draw_into(array, live.overlay, bgr=True)
    if recorder is None:
        return

    def record(frame):
        if frame is not None and drawn_by_source and frame.display is not None:
            recorder.write(Image.fromarray(frame.display))  # drawn on in pre_callback already
        else:
            picture = None if frame is None else (frame.display if frame.display is not None else frame.image)
            recorder.write(live.overlay.render(picture))

    live.on_frame = record


def _print(event: LiveEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event_json(event)), flush=True)
        return
    reused = " (reused)" if event.reused else ""
    print(f"frame {event.frame} {event.task}{reused}: {json.dumps(event.partial.parsed)}", flush=True)
