"""Task name + optional text -> the prompt string Florence-2 was trained on.

The prompt table travels in the bundle manifest (a fine-tune may change it); the
rules here are those of transformers' Florence2Processor.
"""

from __future__ import annotations

from edge.errors import FlorenceEdgeError

LOC_BINS = 1000


def normalize_task(task: str) -> str:
    """'OD', 'od' or '<OD>' -> '<OD>'."""
    name = task.strip().strip("<>").upper()
    return f"<{name}>"


def template(tasks: dict, task: str) -> str:
    """The prompt template of a task in the manifest's table; `{input}` marks where text goes."""
    entry = tasks.get(normalize_task(task))
    if entry is None:
        raise FlorenceEdgeError(f"unknown task {task!r}; tasks: {', '.join(sorted(tasks))}")
    return entry["prompt"]


def takes_input(tasks: dict, task: str) -> bool:
    return "{input}" in template(tasks, task)


def build_prompt(tasks: dict, task: str, text: str | None = None) -> str:
    """The prompt for `task`; `text` fills `{input}` and must be given exactly when the task takes it."""
    key = normalize_task(task)
    prompt = template(tasks, task)
    if "{input}" in prompt:
        if text is None or not text.strip():
            raise FlorenceEdgeError(f"task {key} needs text input (--text)")
        return prompt.format(input=text.strip())
    if text is not None and text.strip():
        raise FlorenceEdgeError(f"task {key} takes no text input")
    return prompt


def region_to_loc_tokens(box, image_size: tuple[int, int]) -> str:
    """Pixel box (x1, y1, x2, y2) on an image of (width, height) -> '<loc_x1><loc_y1><loc_x2><loc_y2>'.

    Binning is the inverse of the post-processor's (bin + 0.5) * size / 1000.
    """
    width, height = image_size
    if len(box) != 4:
        raise FlorenceEdgeError(f"a region is 4 numbers x1,y1,x2,y2, got {len(box)}")
    bins = []
    for value, extent in zip(box, (width, height, width, height)):
        b = int(float(value) * LOC_BINS / extent)
        bins.append(min(max(b, 0), LOC_BINS - 1))
    return "".join(f"<loc_{b}>" for b in bins)
