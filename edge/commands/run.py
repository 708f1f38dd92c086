"""`florence-edge run`: tasks on images, text streamed as it is decoded."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

from edge.draw import draw
from edge.errors import FlorenceEdgeError
from edge.files import publish
from edge.model import Florence2
from edge.preprocess import load_image
from edge.prompts import check_region, clamp_region, task_input
from edge.runtime import add_runtime_argument


def region_argument(text: str) -> tuple[float, ...]:
    try:
        return check_region(text.split(","))
    except FlorenceEdgeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, help="bundle directory")
    parser.add_argument("-i", "--image", action="append", required=True, help="image file (repeatable)")
    parser.add_argument("-t", "--task", action="append", required=True,
                        help="task, as OD or '<OD>' (repeatable): CAPTION, DETAILED_CAPTION, MORE_DETAILED_CAPTION, "
                             "OD, DENSE_REGION_CAPTION, REGION_PROPOSAL, OCR, OCR_WITH_REGION, "
                             "CAPTION_TO_PHRASE_GROUNDING, REFERRING_EXPRESSION_SEGMENTATION, "
                             "REGION_TO_SEGMENTATION, OPEN_VOCABULARY_DETECTION, REGION_TO_CATEGORY, "
                             "REGION_TO_DESCRIPTION, REGION_TO_OCR (a fine-tune may add its own)")
    parser.add_argument("--text", help="text input for tasks that take one (grounding, segmentation, ...)")
    parser.add_argument("--region", type=region_argument, help="pixel box x1,y1,x2,y2 for REGION_TO_* tasks")
    parser.add_argument("--beams", type=int, default=None, help="beam width (default: the model's, usually 3)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: the CPUs this process may use)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image and task")
    parser.add_argument("--draw", metavar="OUT.jpg",
                        help="write each image with its results drawn (%%d: the image's number, from 0)")
    parser.add_argument("--force", action="store_true", help="let --draw replace existing files")
    parser.add_argument("--low-memory", action="store_true",
                        help="open the vision graph per image and free it before decoding (for boards short of "
                             "memory; costs a reload per image; a single image always gets this for free)")
    add_runtime_argument(parser)


def _savable_extensions() -> dict[str, str]:
    """Extension -> Pillow format, for the formats Pillow can write."""
    Image.init()
    return {ext: fmt for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}


def draw_targets(pattern: str, images, force: bool = False) -> list[Path]:
    """Where each image's drawing goes, checked before any work: an image extension Pillow writes,
    an existing folder, none of the inputs, no file replaced unless `force`.

    `%d` in `pattern` is the image's number; without it, several images get -0, -1 ... before the extension.
    """
    if "%d" in pattern:
        try:
            targets = [Path(pattern % i) for i in range(len(images))]
        except (TypeError, ValueError):
            raise FlorenceEdgeError(f"--draw {pattern!r}: use %d once for the image's number "
                                    "(and %% for a literal %)") from None
    else:
        path = Path(pattern)
        targets = [path] if len(images) == 1 else [path.with_name(f"{path.stem}-{i}{path.suffix}")
                                                    for i in range(len(images))]
    extensions = _savable_extensions()
    inputs = {Path(p).resolve() for p in images}
    for target in targets:
        if target.suffix.lower() not in extensions:
            raise FlorenceEdgeError(f"--draw {target}: name an image file (.jpg, .png, .webp ...)")
        if target.resolve() in inputs:
            raise FlorenceEdgeError(f"--draw {target} is one of the input images; choose another name")
        if not target.parent.is_dir():
            raise FlorenceEdgeError(f"--draw {target}: folder {target.parent} does not exist")
        if target.is_dir() or (target.exists() and not force):
            raise FlorenceEdgeError(f"--draw {target} already exists; pass --force to replace it")
    if len(set(targets)) < len(targets):
        raise FlorenceEdgeError(f"--draw {pattern!r} gives several images the same name; use %d")
    return targets


def save_image(image: Image.Image, target: Path) -> None:
    """Write whole or not at all: a full card or a crash never leaves a torn file in place of an old one."""
    fmt = _savable_extensions()[target.suffix.lower()]
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format=fmt)
        publish(partial, target)
    except OSError as exc:
        os.unlink(partial)
        raise FlorenceEdgeError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        os.unlink(partial)
        raise


def run_images(model: Florence2, images, tasks, text=None, region=None, beams=None, max_new_tokens=None,
               out=None, as_json=False, draw_to=None, force=False) -> list:
    """Python twin of the command: run every task on every image; returns the results.

    Tasks, inputs, options and the --draw target are all checked before the first image is read."""
    out = out or sys.stdout
    for path in images:
        if not Path(path).is_file():
            raise FlorenceEdgeError(f"image not found: {path}")
    targets = draw_targets(draw_to, images, force) if draw_to else None
    options = dict(num_beams=beams, max_new_tokens=max_new_tokens)
    inputs = {task: task_input(model.manifest.tasks, task, text, region) for task in tasks}
    for flag, given, index in (("--text", text, 0), ("--region", region, 1)):
        if given is not None and all(pair[index] is None for pair in inputs.values()):
            raise FlorenceEdgeError(f"none of the tasks {', '.join(tasks)} takes {flag}")
    for task in tasks:
        model.prepare(task, *inputs[task], **options)
    results = []
    for index, path in enumerate(images):
        image = load_image(path)
        if region is not None:
            clamp_region(region, image.size)  # one that misses this image is refused before the vision graph
        enc = model.encode(image)
        if index == len(images) - 1:
            model.release_vision()  # no image left to encode: decode without its memory beside
        parsed = {}
        for task in tasks:
            stream = model.stream(enc, task, *inputs[task], **options)
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
                                      "text": res.text, "parsed": res.parsed[res.task], "score": res.score,
                                      "scores": res.scores, "timings": vars(res.timings)}), file=out)
                else:
                    print(f"\n  {json.dumps(res.parsed[res.task])}", file=out)
                    shapes = "".join(f", {key} {values}" for key, values in res.scores.items())
                    print(f"  score {res.score:.2f}{shapes}", file=out)
                    t = res.timings
                    print(f"  vision {t.vision_ms:.0f} ms, encoder {t.encoder_ms:.0f} ms, "
                          f"decode {t.decode_ms:.0f} ms / {t.tokens} tokens", file=out)
        if targets:
            save_image(draw(image, parsed), targets[index])
            if not as_json:
                print(f"  drawn to {targets[index]}", file=out)
    return results


def main(args: argparse.Namespace) -> int:
    for path in args.image:
        if not Path(path).is_file():
            raise FlorenceEdgeError(f"image not found: {path}")
    if args.draw:
        draw_targets(args.draw, args.image, args.force)  # before the model loads: a typo costs nothing
    model = Florence2(args.model, num_threads=args.threads, runtime=args.runtime, low_memory=args.low_memory)
    run_images(model, args.image, args.task, args.text, args.region, args.beams, args.max_new_tokens,
               as_json=args.json, draw_to=args.draw, force=args.force)
    return 0
