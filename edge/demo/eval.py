"""`florence-edge eval`: a bundle on held-out synthetic scenes, metric by task.

Works on any bundle of a model trained on `edge.demo.scenes` (fp32 or int8). Training
uses seeds below 1,000,000; the default evaluation seeds start there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from edge.demo import metrics
from edge.demo.scenes import caption, locs, make_scene
from edge.errors import FlorenceEdgeError
from edge.model import Florence2

HELD_OUT_SEED = 1_000_000


def _by_label(boxes, labels) -> dict:
    out: dict = {}
    for box, label in zip(boxes, labels):
        out.setdefault(label, []).append(box)
    return out


def evaluate(model: Florence2, scenes: int = 200, seed: int = HELD_OUT_SEED, num_beams: int | None = None,
             progress=None) -> dict:
    """Per-task metrics on `scenes` scenes from seed `seed` on (Python twin of the command)."""
    od_pred, od_true = [], []
    caption_hits = ground_hits = ground_total = region_hits = 0
    ocr_right = ocr_total = 0
    mask_ious = []
    start = time.perf_counter()
    for n in range(scenes):
        scene = make_scene(seed + n)
        enc = model.encode(scene.image)

        def ask(task, text=None, enc=enc):
            return model.run(enc, task, text, num_beams=num_beams).parsed[task]

        od = ask("<OD>")
        od_pred.append(_by_label(od["bboxes"], od["labels"]))
        od_true.append(_by_label([s.box for s in scene.shapes], [s.shape for s in scene.shapes]))
        caption_hits += ask("<CAPTION>") == caption(scene)

        grounded = ask("<CAPTION_TO_PHRASE_GROUNDING>", caption(scene))
        predicted = _by_label(grounded["bboxes"], grounded["labels"])
        for shape in scene.shapes:
            ground_total += 1
            ground_hits += any(metrics.match_boxes(predicted.get(f"a {shape.name}", []), [shape.box]))

        if scene.words:
            right, total = metrics.word_accuracy(ask("<OCR>").split(), [w.text for w in scene.words])
            ocr_right += right
            ocr_total += total

        target = scene.shapes[n % len(scene.shapes)]
        seg = ask("<REFERRING_EXPRESSION_SEGMENTATION>", f"the {target.name}")
        mask_ious.append(metrics.mask_iou(seg["polygons"][0] if seg["polygons"] else [], target.polygon, scene.size))
        region_hits += ask("<REGION_TO_CATEGORY>", locs(target.box, scene.size)) == target.name
        if progress:
            progress(n + 1, scenes)
    return {
        "scenes": scenes,
        "seed": seed,
        "od_map50": metrics.detection_map(od_pred, od_true),
        "caption_exact": caption_hits / scenes,
        "ocr_word_accuracy": ocr_right / ocr_total if ocr_total else float("nan"),
        "grounding_recall50": ground_hits / ground_total,
        "segmentation_mask_iou": float(np.mean(mask_ious)),
        "region_category_accuracy": region_hits / scenes,
        "seconds": time.perf_counter() - start,
    }


LABELS = {
    "od_map50": "OD mAP@0.5", "caption_exact": "caption exact match", "ocr_word_accuracy": "OCR word accuracy",
    "grounding_recall50": "grounding recall@0.5", "segmentation_mask_iou": "segmentation mask IoU",
    "region_category_accuracy": "region -> category accuracy",
}


def format_metrics(result: dict) -> str:
    lines = [f"{LABELS[k]:<30} {result[k]:.3f}" for k in LABELS]
    lines.append(f"({result['scenes']} scenes from seed {result['seed']}, {result['seconds']:.0f} s)")
    return "\n".join(lines)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", required=True, help="bundle directory")
    parser.add_argument("--scenes", type=int, default=200, help="number of held-out scenes")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="first scene seed")
    parser.add_argument("--beams", type=int, default=None, help="beam width (default: the model's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: the CPUs this process may use)")
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    def progress(done, total):
        print(f"\r[florence-edge] eval {done}/{total}", end="", file=sys.stderr, flush=True)

    if args.scenes < 1:
        raise FlorenceEdgeError("--scenes must be at least 1")
    model = Florence2(args.model, num_threads=args.threads)
    result = evaluate(model, args.scenes, args.seed, args.beams, progress)
    print(file=sys.stderr)
    print(json.dumps(result) if args.json else format_metrics(result))
    return 0
