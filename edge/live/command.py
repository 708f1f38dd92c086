"""`florence-edge live`: a camera, stream, video or the scene generator through the model, results as they decode.

stdout: with `--json`, one JSON line per finished frame x task and one per event (an "event" key);
otherwise a line per result and per event; with `--events-only`, only the events' JSON lines.
stderr: notices (outages), and the loop's figures at the end. Ctrl-C or SIGTERM stops it cleanly
(camera released, recording finished) with exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from PIL import Image

from edge.bundle_memory import check_fits
from edge.errors import FlorenceEdgeError
from edge.live import config
from edge.live.broadcast import FrameHub
from edge.live.events.settings import event_stream
from edge.live.events.stream import Event
from edge.live.frames import CameraSettings
from edge.live.loop import Live, LiveEvent
from edge.live.notify import Notifier, watchdog_seconds
from edge.live.outputs.wiring import Every, build_outputs, output_settings
from edge.live.overlay import draw_into
from edge.live.record import Recorder, check_target
from edge.live.rehash import Rehash
from edge.live.sources import open_source
from edge.live.watchdog import Watchdog
from edge.live.web import WebView, check_binding, parse_address, read_token
from edge.manifest import load_manifest
from edge.model import Florence2
from edge.runtime import select_runtime
from edge.self_test import load_checked


def configure_parser(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)
    parser.add_argument("--frames", type=int, help="stop after this many frames with results (reused ones count)")
    parser.add_argument("--record", metavar="OUT.mp4", help="write the annotated video")
    parser.add_argument("--force", action="store_true", help="let --record replace an existing file")
    parser.add_argument("--token", help="token every web route wants (Authorization: Bearer, or ?token=); "
                                        "--token-file keeps it out of `ps`")


def event_json(event: LiveEvent) -> dict:
    """The `--json` line of a finished frame x task (`timings` null when the frame reused results)."""
    return {"frame": event.frame, "time": round(event.time, 3), "task": event.task, "text": event.result.text,
            "parsed": event.partial.parsed, "score": event.result.score, "scores": event.result.scores,
            "image_size": list(event.image_size), "reused": event.reused,
            "timings": None if event.reused else vars(event.result.timings)}


def _stop_on_sigterm() -> None:
    # systemd and `kill` send SIGTERM: stop as Ctrl-C does, through the same clean-up.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def shape_json(shape) -> dict:
    out = {"kind": shape.kind, "label": shape.label, "coords": list(shape.coords)}
    return out if shape.score is None else {**out, "score": shape.score}


def event_payload(event: LiveEvent | Event) -> dict:
    """What the web view's /events sends: a finished result is the `--json` object plus its shapes
    (each with its score); a partial one says what is drawable so far; an event is its `--json` line."""
    if isinstance(event, Event):
        return event.as_json()
    drawable = {"shapes": [shape_json(s) for s in event.partial.shapes],
                "growing": [shape_json(s) for s in event.partial.growing]}
    if event.kind == "result":
        return {**event_json(event), **drawable}
    return {"frame": event.frame, "time": round(event.time, 3), "task": event.task, "piece": event.piece,
            "text": event.partial.text, "image_size": list(event.image_size), **drawable}


def _token(settings, args) -> str | None:
    return read_token(settings.token_file) if settings.token_file else args.token


def _required(settings) -> None:
    for key, where in (("model", "-m/--model"), ("source", "--source"), ("tasks", "-t/--task")):
        if settings.values[key] is None:
            section = config.BY_KEY[key].section
            raise FlorenceEdgeError(f"name the {key}: {where}, or {key} in [{section}] of a --config file")


def main(args: argparse.Namespace) -> int:
    settings = config.resolve(args)
    if args.print_config:
        print(config.to_toml(settings), end="")
        return 0
    _required(settings)
    recorder_target = check_target(args.record, args.force) if args.record else None
    token = _token(settings, args)
    address = parse_address(settings.http) if settings.http else None
    if address:
        check_binding(address[0], token)
    notifier = Notifier.from_environment()
    notifier.send(STATUS=f"loading {settings.model}")
    manifest = load_manifest(settings.model)
    check_fits(manifest, select_runtime(settings.runtime, manifest.quantization), settings.memory_max_mb,
               f"allowed by memory_max_mb ({settings.origins['memory_max_mb']})", low_memory=settings.low_memory)
    notifier.send(STATUS="self-test: hashing the bundle, answering the probe")
    model, tested = load_checked(settings.model, num_threads=settings.threads, runtime=settings.runtime,
                                 low_memory=settings.low_memory)
    print(f"florence-edge live: self-test {'passed' if tested.passed else 'skipped'} in {tested.ms:.0f} ms: "
          f"{tested.note}", file=sys.stderr, flush=True)
    events = event_stream(settings, model)  # zones, triggers and outputs checked before the camera opens
    wanted = output_settings(settings)
    camera = CameraSettings(settings.main_size, settings.lores_size, settings.fps, settings.source_password_file)
    live = Live(model, open_source(settings.source, _model_size(model), camera), settings.tasks,
                settings.text, settings.region, settings.every_frame, settings.loop, settings.change_threshold,
                args.frames, settings.beams, settings.max_new_tokens, stale_after=settings.stale_after,
                events=events)
    recorder = Recorder(recorder_target, live.source.fps or 10.0, args.force, live.log) if recorder_target else None
    view = _serve(live, address, token, settings.jpeg_quality) if address else None
    frames = view.frames if view is not None else FrameHub(live.overlay.render, settings.jpeg_quality)
    outputs = build_outputs(wanted, settings, live, frames, view.address if view else None, live.log)
    if view is not None:
        view.outputs = outputs
    _attach_overlay(live, recorder, view, frames, outputs)
    outputs.start()
    stats_due = Every(settings.stats_every)
    _stop_on_sigterm()
    rehash = _rehash(live, settings.rehash_hours)
    ready, watchdog = False, None
    printed: dict = {}  # task -> the answer last printed in text mode
    try:
        for event in live:
            payload = _handed_out(event, outputs, live, view, stats_due)
            if view is not None:
                view.on_event(event.kind, payload)
                if event.kind == "result":
                    view.on_event("stats", view.stats())
            if event.kind == "result" and not ready:
                ready, watchdog = True, _ready(notifier, live)
            if event.kind != "partial":
                _print(event, payload, settings, printed)
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: a normal way to end a live loop
    finally:
        notifier.send(STOPPING=1, STATUS="stopping")
        if watchdog is not None:
            watchdog.stop()
        if rehash is not None:
            rehash.stop()
        live.stop()
        if recorder is not None:
            recorder.close()
        if view is not None:
            view.close()
        outputs.close()
    stats = live.stats()
    if not settings.json:
        print(f"florence-edge live: {_figures(stats)}", file=sys.stderr)
    print(f"florence-edge live: {json.dumps(stats)}", file=sys.stderr)  # last: what scripts and journals read
    if live.failure:
        print(f"florence-edge live: stopped: {live.failure}; a service starts again to its self-test", file=sys.stderr)
        return 1
    return 0


def _rehash(live: Live, hours: float) -> Rehash | None:
    """The bundle hashed again every `hours` in the background; a damaged file ends the run (as SIGTERM
    does, through the same clean-up) with exit 1, so systemd restarts the service to its self-test."""
    if not hours:
        return None

    def damaged(line: str) -> None:
        live.failure = line
        live.log(f"{line}: stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    rehash = Rehash(live.model.manifest, hours * 3600, damaged)
    rehash.start()
    return rehash


def _figures(stats: dict) -> str:
    """The loop's figures in words, for a person reading the terminal (`--json` gives them all)."""
    final, first = stats["final_ms"], stats["first_shape_ms"]
    times = (f"; capture to answer {final['median']:.0f} ms (p90 {final['p90']:.0f})" if final["n"] else "") + (
        f", to first box {first['median']:.0f} ms" if first["n"] else "")
    return (f"{stats['captured']} frames read in {stats['seconds']:.1f} s, {stats['inferred']} answered, "
            f"{stats['reused']} unchanged (answer kept), {stats['dropped']} skipped while busy{times}")


def _model_size(model: Florence2) -> tuple[int, int]:
    return model.manifest.image["width"], model.manifest.image["height"]


def _ready(notifier: Notifier, live: Live) -> Watchdog | None:
    """The first result is out: tell systemd, and start the watchdog's pings if it wants them."""
    notifier.send(READY=1, STATUS=f"running: {live.status_line()}")
    period = watchdog_seconds()
    if period is None or not notifier.active:
        return None
    watchdog = Watchdog(notifier, live, period)
    watchdog.start()
    return watchdog


def _serve(live: Live, address: tuple[str, int], token: str | None, jpeg_quality: int) -> WebView:
    try:
        view = WebView(live, *address, token=token, jpeg_quality=jpeg_quality)
    except OSError as exc:
        raise FlorenceEdgeError(f"cannot serve on {address[0]}:{address[1]}: {exc.strerror}") from None
    host, port = view.address
    print(f"florence-edge live: web view on http://{host}:{port}/", file=sys.stderr, flush=True)
    return view


def _handed_out(event, outputs, live: Live, view: WebView | None, stats_due: Every) -> dict | None:
    """The event's payload, handed to the outputs: an event with its frame (snapshots) and the names
    of its files; a result computed (not reused); the figures every `stats_every` seconds."""
    if isinstance(event, Event):
        frame = live.event_frame  # its displayed picture: the overlay is drawn in its pixels
        return outputs.event(event.as_json(), None if frame is None else
                             frame.display if frame.display is not None else frame.image)
    payload = event_payload(event) if view is not None else None
    if event.kind == "result" and outputs:
        if not event.reused:
            outputs.result(event_json(event))
        if stats_due():
            outputs.stats(view.stats() if view is not None else {**live.stats(), "outputs": outputs.counts()})
    return payload


def _attach_overlay(live: Live, recorder: Recorder | None, view: WebView | None, frames: FrameHub,
                    outputs) -> None:
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
        outputs.frame(frame)
        if recorder is not None:
            record(frame)
        if view is not None:
            view.on_frame(frame)
        elif frame is not None:  # for MQTT's snapshots: a reference, encoded only when asked
            frames.publish(frame.display if frame.display is not None else frame.image)

    live.on_frame = each


def _print(event: LiveEvent | Event, payload: dict, settings, printed: dict) -> None:
    """An event or a result as the settings ask; in text mode a task's answer only when it changed."""
    if isinstance(event, Event):
        if settings.json or settings.events_only:
            print(json.dumps(payload), flush=True)
        elif settings.print_results:
            print(f"event {event.type} {event.name}: {json.dumps(event.after)}", flush=True)
        return
    if settings.events_only:
        return
    if settings.json:
        print(json.dumps(event_json(event)), flush=True)
        return
    if not settings.print_results or printed.get(event.task, printed) == event.partial.parsed:
        return
    printed[event.task] = event.partial.parsed
    print(f"frame {event.frame} {event.task}: {json.dumps(event.partial.parsed)}", flush=True)
