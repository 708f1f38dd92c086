"""The browser runtime (edge/phone/model.js on LiteRT.js's WebAssembly) in headless Chromium against
the Python runtime on the demo bundle: held-out scenes, every task the model was trained for (a
region given in pixels for REGION_TO_CATEGORY), greedy and 3 beams, the same tokens and the same
parsed answers; on LiteRT.js's build with relaxed SIMD and on the one without (what Safari runs)."""

from __future__ import annotations

import pytest

from benchmarks.phone import open_page, rgba, served
from edge.demo.scenes import caption, make_scene
from edge.model import Florence2

SEEDS = (1_000_101, 1_000_102)


@pytest.mark.parametrize("build", ["", "litert_wasm_compat_internal.js"], ids=["relaxed-simd", "compat"])
def test_tokens_and_answers_are_the_python_runtimes(demo_int8_bundle, build):
    from playwright.sync_api import sync_playwright

    model = Florence2(demo_int8_bundle[0], num_threads=1)
    with served(demo_int8_bundle[0]) as base, sync_playwright() as p:
        browser, page = open_page(p, base, build)
        fetched = page.evaluate("performance.getEntriesByType('resource').map(e => e.name.split('/').pop())")
        want = build or "litert_wasm_internal.js"
        assert [name for name in fetched if name.startswith("litert_wasm")] == [want, want.replace(".js", ".wasm")]
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        for seed in SEEDS:
            scene = make_scene(seed)
            inputs = {"<CAPTION>": {}, "<OD>": {}, "<OCR>": {}, "<OCR_WITH_REGION>": {},
                      "<CAPTION_TO_PHRASE_GROUNDING>": {"text": caption(scene)},
                      "<REFERRING_EXPRESSION_SEGMENTATION>": {"text": f"the {scene.shapes[0].name}"},
                      "<REGION_TO_CATEGORY>": {"region": [round(v) for v in scene.shapes[0].box]}}
            assert sorted(inputs) == sorted(model.manifest.trained_tasks)
            cases = [{"task": task, **given, "numBeams": beams, "maxNewTokens": 64}
                     for task, given in inputs.items() for beams in (1, 3)]
            got = page.evaluate("([r, w, h, cases]) => window.florence.answer(r, w, h, cases)",
                                [*rgba(scene.image), cases])
            for case, answer in zip(cases, got):
                want = model.run(scene.image, case["task"], case.get("text"), case.get("region"),
                                 num_beams=case["numBeams"], max_new_tokens=case["maxNewTokens"])
                assert answer["tokens"] == want.token_ids, (seed, case)
                assert answer["parsed"] == want.parsed and answer["text"] == want.text, (seed, case)
        browser.close()
    assert not errors, errors
