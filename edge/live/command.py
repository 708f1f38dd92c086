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

from edge.errors import FlorenceEdgeError
from edge.live.change import DEFAULT_THRESHOLD
from edge.live.loop import Live, LiveEvent
from edge.live.overlay import draw_into
from edge.live.record import Recorder, check_target
from edge.live.web import WebView, check_binding, parse_address
from edge.model import Florence2
from edge.run import region_argument
from edge.runtime import add_runtime_argument


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, help="bundle directory")
    parser.add_argument("--source", required=True,
                        help="scenes | picamera2 | /dev/videoN or N | video file | image, folder or glob | "
                             "rtsp://... or http://... stream")
    parser.add_argument("-t", "--task", action="append", required=True, help="task, as in `run` (repeatable)")
    parser.add_argument("--text", help="text input for tasks that take one")
    parser.add_argument("--region", type=region_argument, help="pixel box x1,y1,x2,y2 for REGION_TO_* tasks")
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
    parser.add_argument("--http", metavar="[HOST:]PORT",
                        help="serve the web view (default host 127.0.0.1; another host needs --token)")
    parser.add_argument("--token", help="token every web route wants (Authorization: Bearer, or ?token=)")
    parser.add_argument("--token-file", help="read the token from this file (keeps it out of `ps`)")
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


def shape_json(shape) -> dict:
    return {"kind": shape.kind, "label": shape.label, "coords": list(shape.coords)}


def event_payload(event: LiveEvent) -> dict:
    """What the web view's /events sends: a finished result is the `--json` object plus its shapes;
    a partial one says what is drawable so far."""
    drawable = {"shapes": [shape_json(s) for s in event.partial.shapes],
                "growing": [shape_json(s) for s in event.partial.growing]}
    if event.kind == "result":
        return {**event_json(event), **drawable}
    return {"frame": event.frame, "time": round(event.time, 3), "task": event.task, "piece": event.piece,
            "text": event.partial.text, "image_size": list(event.image_size), **drawable}


def _token(args) -> str | None:
    if args.token_file:
        try:
            return open(args.token_file).read().strip() or None
        except OSError as exc:
            raise FlorenceEdgeError(f"cannot read --token-file {args.token_file}: {exc.strerror}") from None
    return args.token


def main(args: argparse.Namespace) -> int:
    recorder_target = check_target(args.record, args.force) if args.record else None
    token = _token(args)
    address = parse_address(args.http) if args.http else None
    if address:
        check_binding(address[0], token)
    model = Florence2(args.model, num_threads=args.threads, runtime=args.runtime)
    live = Live(model, args.source, args.task, args.text, args.region, args.every_frame, args.loop,
                args.change_threshold, args.frames, args.beams, args.max_new_tokens, stale_after=args.stale_after)
    recorder = Recorder(recorder_target, live.source.fps or 10.0, args.force) if recorder_target else None
    view = _serve(live, address, token) if address else None
    _attach_overlay(live, recorder, view)
    _stop_on_sigterm()
    try:
        for event in live:
            if view is not None:
                view.on_event(event.kind, event_payload(event))
                if event.kind == "result":
                    view.on_event("stats", view.stats())
            if event.kind == "result":
                _print(event, args.json)
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: a normal way to end a live loop
    finally:
        live.stop()
        if recorder is not None:
            recorder.close()
        if view is not None:
            view.close()
    print(f"florence-edge live: {json.dumps(live.stats())}", file=sys.stderr)
    return 0


def _serve(live: Live, address: tuple[str, int], token: str | None) -> WebView:
    try:
        view = WebView(live, *address, token=token)
    except OSError as exc:
        raise FlorenceEdgeError(f"cannot serve on {address[0]}:{address[1]}: {exc.strerror}") from None
    host, port = view.address
    print(f"florence-edge live: web view on http://{host}:{port}/", file=sys.stderr, flush=True)
    return view


def _attach_overlay(live: Live, recorder: Recorder | None, view: WebView | None) -> None:
    """Draw results onto the source's own frames where it has a hook (picamera2's pre_callback: the
    preview and any recording carry them), onto what is recorded, and hand frames to the web view."""
    drawn_by_source = hasattr(live.source, "on_main")
    if drawn_by_source:
        live.source.on_main = lambda array: draw_into(array, live.overlay, bgr=True)

    def record(frame):
        if frame is not None and drawn_by_source and frame.display is not None:
            recorder.write(Image.fromarray(frame.display))  # drawn on in pre_callback already
        else:
            picture = None if frame is None else (frame.display if frame.display is not None else frame.image)
            recorder.write(live.overlay.render(picture))

    def each(frame):
        if recorder is not None:
            record(frame)
        if view is not None:
            view.on_frame(frame)

    live.on_frame = each


def _print(event: LiveEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event_json(event)), flush=True)
        return
    reused = " (reused)" if event.reused else ""
    print(f"frame {event.frame} {event.task}{reused}: {json.dumps(event.partial.parsed)}", flush=True)
