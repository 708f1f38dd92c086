"""Run the cross-check cases with the device runtime and print them as JSON: imported by the tests on
x86, run as a script by the emulated aarch64 Python (which has no pytest)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
IMAGES = ("shapes-0.png", "shapes-1.png")
TASKS = (("<CAPTION>", None), ("<OD>", None), ("<OCR_WITH_REGION>", None),
         ("<REFERRING_EXPRESSION_SEGMENTATION>", "the red square"))


def cases(bundle: str, beams: list[int]) -> dict:
    """{'runtime': path taken, 'results': [[image, task, beams, token_ids, parsed], ...]}"""
    from edge.model import Florence2

    model = Florence2(bundle, num_threads=2)
    results = []
    for name in IMAGES:
        enc = model.encode(SAMPLES / name)
        for n in beams:
            for task, text in TASKS:
                res = model.run(enc, task, text, num_beams=n)
                results.append([name, task, n, res.token_ids, res.parsed])
    model.close()
    return {"runtime": model.runtime, "results": results}


if __name__ == "__main__":
    print(json.dumps(cases(sys.argv[1], [int(n) for n in sys.argv[2].split(",")])))
