"""Partial answers grow into the parser's final answer and never take back what they showed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.live.incremental import IncrementalParser, Partial
from edge.model import Florence2


@pytest.fixture(scope="module")
def model(fp32_bundle):
    return Florence2(fp32_bundle[0], num_threads=1)


def _grows(before: Partial, after: Partial) -> bool:
    """`after` keeps every settled shape of `before` unchanged and extends its text."""
    return after.text.startswith(before.text) and after.shapes[: len(before.shapes)] == before.shapes


def _states(model, task: str, ids: list[int], size) -> tuple[list[Partial], Partial]:
    parser = IncrementalParser(model, task, size)
    states = [state for token in ids if (state := parser.push([token])) is not None]
    return states, parser.finish(model.parse(ids, task, size))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_task_grows_into_its_final_parse(model, token_atoms, data):
    ids = sum(data.draw(st.lists(token_atoms, max_size=14)), [])
    size = data.draw(st.tuples(st.integers(1, 4000), st.integers(1, 4000)))
    for task in model.manifest.tasks:
        states, final = _states(model, task, ids, size)
        shown = [Partial(task, "", ()), *states]
        for before, after in zip(shown, shown[1:]):
            assert _grows(before, after), (task, before, after)
        assert (shown[-1].text, shown[-1].shapes + shown[-1].growing) == (final.text, final.shapes), task
        assert final.final and final.parsed == model.parse(ids, task, size)[task]


def test_a_box_shows_as_soon_as_its_fourth_location_token_is_out(model):
    tok = model.codec.tokenizer
    ids = tok.encode("car<loc_100><loc_200><loc_300><loc_400>bus<loc_500>", add_special_tokens=False).ids
    parser = IncrementalParser(model, "<OD>", (1000, 1000))
    first_box = next(i for i, token in enumerate(ids) if parser.push([token]) is not None and parser.partial.shapes)
    assert tok.decode(ids[: first_box + 1], skip_special_tokens=False).endswith("<loc_400>")
    assert parser.partial.shapes[0].label == "car" and parser.partial.shapes[0].coords == (100, 200, 300, 400)


def test_a_caption_grows_word_by_word(model):
    ids = model.codec.tokenizer.encode("a red circle and the blue square", add_special_tokens=False).ids
    states, final = _states(model, "<CAPTION>", ids, (64, 64))
    texts = [s.text for s in states]
    assert texts[:2] == ["a", "a red"] and len(texts) == len(ids)  # every token shows
    assert all(final.text.startswith(t) for t in texts) and final.text == "a red circle and the blue square"


def test_a_polygon_grows_then_settles(model):
    tok = model.codec.tokenizer
    locs = "".join(f"<loc_{100 * i}>" for i in range(1, 9))
    ids = tok.encode(f"{locs}<sep><loc_1><loc_2><loc_3><loc_4><loc_5><loc_6> car", add_special_tokens=False).ids
    states, final = _states(model, "<REFERRING_EXPRESSION_SEGMENTATION>", ids, (1000, 1000))
    growing = [[len(shape.coords) for shape in s.growing] for s in states if s.growing]
    assert growing == [[6], [8], [8, 6]]  # drawn from 3 points on, a point per 2 tokens, a new one after <sep>
    assert states[-1].growing == () and states[-1].shapes == final.shapes  # the chunk ended: settled
    assert final.shapes[0].coords == (100, 200, 300, 400, 500, 600, 700, 800)
