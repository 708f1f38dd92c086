"""Task name + optional text -> the prompt string Florence-2 was trained on.

The prompt table travels in the bundle manifest (a fine-tune may change it); the
rules here are those of transformers' Florence2Processor.
"""

from __future__ import annotations

import math

from edge.errors import FlorenceEdgeError

LOC_BINS = 1000


def normalize_task(task: str) -> str:
    """'OD', 'od' or '<OD>' -> '<OD>'."""
    if not isinstance(task, str):
        raise FlorenceEdgeError(f"a task is a name such as 'OD' or '<OD>', not {type(task).__name__}")
    name = task.strip().strip("<>").upper()
    return f"<{name}>"


def takes_region(task: str) -> bool:
    """REGION_TO_* tasks take a box (as four `<loc_N>` tokens) where others take text."""
    return normalize_task(task).startswith("<REGION_TO_")


def template(tasks: dict, task: str) -> str:
    """The prompt template of a task in the manifest's table; `{input}` marks where text goes."""
    entry = tasks.get(normalize_task(task))
    if entry is None:
        raise FlorenceEdgeError(f"unknown task {task!r}; tasks: {', '.join(sorted(tasks))}")
    return entry["prompt"]


def takes_input(tasks: dict, task: str) -> bool:
    return "{input}" in template(tasks, task)


def check_input(tasks: dict, task: str, text: str | None = None, region=None) -> None:
    """Refuse, in one line, input that does not fit the task: a REGION_TO_* task takes a region (or its
    `<loc_N>` tokens as text), other tasks with `{input}` take text, the rest take nothing."""
    key = normalize_task(task)
    if text is not None and not isinstance(text, str):
        raise FlorenceEdgeError(f"text input is a string, not {type(text).__name__}")
    has_text = bool(text and text.strip())
    if "{input}" not in template(tasks, task):
        if has_text or region is not None:
            raise FlorenceEdgeError(f"task {key} takes no input (neither --text nor --region)")
    elif takes_region(key):
        if region is None and not has_text:
            raise FlorenceEdgeError(f"task {key} needs a region: --region x1,y1,x2,y2 in pixels")
        if region is not None and has_text:
            raise FlorenceEdgeError(f"task {key} takes a region or its <loc_N> tokens as text, not both")
    elif region is not None:
        raise FlorenceEdgeError(f"task {key} takes text (--text), not a region")
    elif not has_text:
        raise FlorenceEdgeError(f"task {key} needs text input: --text")


def task_input(tasks: dict, task: str, text: str | None, region) -> tuple:
    """(text, region) for one task of several that share one --text and one --region: the region goes
    to REGION_TO_* tasks (else the text, as <loc_N> tokens), the text to other tasks that take input,
    nothing to the rest."""
    if "{input}" not in template(tasks, task):
        return None, None
    if takes_region(task):
        return (None, region) if region is not None else (text, None)
    return text, None


def build_prompt(tasks: dict, task: str, text: str | None = None) -> str:
    """The prompt for `task`; `text` fills `{input}` and must be given exactly when the task takes it."""
    check_input(tasks, task, text)
    prompt = template(tasks, task)
    return prompt.format(input=text.strip()) if "{input}" in prompt else prompt


def check_region(box) -> tuple[float, float, float, float]:
    """A region as four finite numbers x1, y1, x2, y2 with x1 < x2 and y1 < y2, in pixels."""
    if isinstance(box, (str, bytes)) or not hasattr(box, "__len__") or len(box) != 4:
        raise FlorenceEdgeError(f"a region is 4 numbers x1,y1,x2,y2 in pixels, got {box!r}")
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise FlorenceEdgeError(f"a region is 4 numbers x1,y1,x2,y2 in pixels, got {box!r}") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise FlorenceEdgeError(f"a region's numbers must be finite, got {x1:g},{y1:g},{x2:g},{y2:g}")
    if x1 >= x2 or y1 >= y2:
        raise FlorenceEdgeError(f"a region needs x1 < x2 and y1 < y2, got {x1:g},{y1:g},{x2:g},{y2:g}")
    return x1, y1, x2, y2


def clamp_region(box, image_size: tuple[int, int]) -> tuple[tuple[float, ...], str | None]:
    """(the region inside the image, a note saying what was clamped, or None); refused if none of it is inside."""
    x1, y1, x2, y2 = check_region(box)
    width, height = image_size
    inside = (min(max(x1, 0), width), min(max(y1, 0), height), min(max(x2, 0), width), min(max(y2, 0), height))
    if inside[0] >= inside[2] or inside[1] >= inside[3]:
        raise FlorenceEdgeError(f"region {x1:g},{y1:g},{x2:g},{y2:g} lies outside the {width}x{height} image")
    if inside == (x1, y1, x2, y2):
        return inside, None
    shown = ",".join(f"{v:g}" for v in inside)
    return inside, f"region {x1:g},{y1:g},{x2:g},{y2:g} reaches outside the {width}x{height} image; used {shown}"


def region_to_loc_tokens(box, image_size: tuple[int, int]) -> str:
    """Pixel box (x1, y1, x2, y2) inside an image of (width, height) -> '<loc_x1><loc_y1><loc_x2><loc_y2>'.

    Binning is the inverse of the post-processor's (bin + 0.5) * size / 1000.
    """
    width, height = image_size
    bins = []
    for value, extent in zip(check_region(box), (width, height, width, height)):
        b = int(value * LOC_BINS / extent)
        bins.append(min(max(b, 0), LOC_BINS - 1))
    return "".join(f"<loc_{b}>" for b in bins)
