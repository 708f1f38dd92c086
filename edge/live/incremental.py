"""Partial answers: what can be drawn from the tokens decoded so far.

The rule is the parser's own (`edge.postprocess`, equal to transformers'), applied to the text
decoded so far: a box appears once its four `<loc_N>` tokens are out, an OCR quad once its eight
are, a caption grows by its words. Those are `shapes`: once shown, never changed or taken back,
because the parse of a prefix of an answer lists a prefix of the whole answer's boxes and quads.
Polygons are `growing` until their chunk of the answer ends: a polygon gains a point per two
location tokens, but the reference parser can still drop it (a later `<poly>` drops a run that
ends at it; a later `<poly>...</poly>` pair drops the runs outside pairs), so it becomes a shape
only when settled. OPEN_VOCABULARY_DETECTION's answer turns into polygons wholesale at its first
`<poly>`, so everything it shows is `growing` until the answer is complete. The property tests
check all of this on generated sequences for every task.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.draw import Shape, shapes
from edge.postprocess import open_polygon_chunk, parse

# Output types whose shapes settle only at the end (see above).
_UNSETTLED_UNTIL_FINAL = {"description_with_bboxes_or_polygons"}
# Polygon output types, and whether their chunks may lack a label (the parser's allow_empty).
_POLYGON_KINDS = {"polygons": True, "description_with_polygons": False}


@dataclass(frozen=True)
class Partial:
    """A task's answer so far: `text` (what a string answer reads so far, else ""); `shapes`, settled,
    and `growing`, not yet settled, in the pixels of the image the model saw; `final` once the answer
    is complete (then `parsed` is the parser's answer and nothing is growing)."""

    task: str
    text: str
    shapes: tuple[Shape, ...]
    growing: tuple[Shape, ...] = ()
    final: bool = False
    parsed: object = None


class IncrementalParser:
    """Feed a task's tokens as they are decoded; `push` says what became drawable."""

    def __init__(self, model, task: str, image_size: tuple[int, int]):
        self.model = model
        self.task = task
        self.image_size = image_size
        self.kind = model.manifest.tasks[task]["post_processing"]
        self.tokens: list[int] = []
        self.partial = Partial(task, "", ())

    def push(self, token_ids: list[int]) -> Partial | None:
        """The new state after `token_ids`, or None when nothing visible changed."""
        self.tokens += token_ids
        # A prefix can end inside a multi-byte character: its replacement mark is not text yet.
        text = self.model.codec.decode(self.tokens).rstrip("\ufffd")
        answer = self._parse(text)
        found = tuple(shapes(answer))
        if self.kind in _UNSETTLED_UNTIL_FINAL:
            settled = ()
        elif self.kind in _POLYGON_KINDS:
            before_open = open_polygon_chunk(text, _POLYGON_KINDS[self.kind])
            settled = found if before_open is None else tuple(shapes(self._parse(before_open)))
        else:
            settled = found
        state = Partial(self.task, answer if isinstance(answer, str) else "", settled, found[len(settled):])
        if state == self.partial:
            return None
        self.partial = state
        return state

    def _parse(self, text: str):
        return parse(text, self.task, self.kind, self.image_size, self.model.manifest.raw["post_processing"])[self.task]

    def finish(self, parsed: dict, scores: dict | None = None) -> Partial:
        """The final state, from the parser's answer for the whole sequence (shapes with their `scores`)."""
        answer = parsed[self.task]
        self.partial = Partial(self.task, answer if isinstance(answer, str) else "", tuple(shapes(answer, scores)),
                               (), True, answer)
        return self.partial
