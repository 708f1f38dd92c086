"""`florence-edge run`: tasks on images, text streamed as it is decoded."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.draw import draw
from edge.errors import FlorenceEdgeError
from edge.model import Florence2
from edge.preprocess import load_image
from edge.prompts import region_to_loc_tokens, takes_input
from edge.runtime import add_runtime_argument


def _region(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"region must be x1,y1,x2,y2 in pixels, got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"region must be 4 numbers x1,y1,x2,y2, got {len(values)}")
    return values


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, help="bundle directory")
    parser.add_argument("-i", "--image", action="append", required=True, help="image file (repeatable)")
    parser.add_argument("-t", "--task", action="append", required=True, help="task: OD or '<OD>' (repeatable)")
    parser.add_argument("--text", help="text input for tasks that take one (grounding, segmentation, ...)")
    parser.add_argument("--region", type=_region, help="pixel box x1,y1,x2,y2 for REGION_TO_* tasks")
    parser.add_argument("--beams", type=int, default=None, help="beam width (default: the model's, usually 3)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: the CPUs this process may use)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image and task")
    parser.add_argument("--draw", metavar="OUT.jpg", help="write the image with results drawn (%%d for several images)")
    add_runtime_argument(parser)


def _draw_path(pattern: str, index: int, count: int) -> Path:
    if "%d" in pattern:
        return Path(pattern % index)
    if count == 1:
        return Path(pattern)
    path = Path(pattern)
    return path.with_name(f"{path.stem}-{index}{path.suffix}")


def run_images(model: Florence2, images, tasks, text=None, region=None, beams=None, max_new_tokens=None,
               out=None, as_json=False, draw_to=None) -> list:
    """Python twin of the command: run every task on every image; returns the results."""
    out = out or sys.stdout
    wants_text = {task: takes_input(model.manifest.tasks, task) for task in tasks}
    if (text or region) and not any(wants_text.values()):
        raise FlorenceEdgeError(f"none of the tasks {', '.join(tasks)} takes text input")
    results = []
    for index, path in enumerate(images):
        image = load_image(path)
        enc = model.encode(image)
        parsed = {}
        for task in tasks:
            task_text = None
            if wants_text[task]:
                task_text = region_to_loc_tokens(region, image.size) if region else text
            stream = model.stream(enc, task, task_text, num_beams=beams, max_new_tokens=max_new_tokens)
            if not as_json:
                print(f"{path} {task}: ", end="", file=out, flush=True)
            for event in stream:
                if event.result is None:
                    if not as_json:
                        print(event.text, end="", file=out, flush=True)
                    continue
                res = event.result
                results.append(res)
                parsed.update(res.parsed)
                if as_json:
                    print(json.dumps({"image": str(path), "image_size": list(image.size), "task": res.task,
                                      "text": res.text, "parsed": res.parsed[res.task],
                                      "timings": vars(res.timings)}), file=out)
                else:
                    print(f"\n  {json.dumps(res.parsed[res.task])}", file=out)
                    t = res.timings
                    print(f"  vision {t.vision_ms:.0f} ms, encoder {t.encoder_ms:.0f} ms, "
                          f"decode {t.decode_ms:.0f} ms / {t.tokens} tokens", file=out)
        if draw_to:
            target = _draw_path(draw_to, index, len(images))
            draw(image, parsed).save(target)
            if not as_json:
                print(f"  drawn to {target}", file=out)
    return results


def main(args: argparse.Namespace) -> int:
    try:
        model = Florence2(args.model, num_threads=args.threads, runtime=args.runtime)
        run_images(model, args.image, args.task, args.text, args.region, args.beams, args.max_new_tokens,
                   as_json=args.json, draw_to=args.draw)
    except FlorenceEdgeError as exc:
        print(f"\nflorence-edge run: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # the reader left: edge.cli ends quietly
    except OSError as exc:
        print(f"\nflorence-edge run: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0
