"""The parity check (`converters.verify`): generate()'s vision tower runs once per picture, and the
tokens it gives are generate()'s own."""

from __future__ import annotations

from converters.verify import CASES, reference_tokens, sample_images, token_agreement


def test_the_reference_runs_the_vision_tower_once_per_picture(tiny_source, fp32_bundle):
    images = sample_images()
    fresh = {(i, task): reference_tokens(tiny_source, image, task, text, 12)
             for i, image in enumerate(images) for task, text in CASES}
    calls = []
    hook = tiny_source.model.model.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    try:
        report = token_agreement(tiny_source, fp32_bundle[0], images, max_new_tokens=12)
    finally:
        hook.remove()
    assert len(calls) == len(images) and len(CASES) > 1
    assert report["exact"] == report["total"] == len(fresh)  # fp32: generate()'s tokens, token for token
    assert "get_image_features" not in vars(tiny_source.model.model)  # the model is left as it was
    assert reference_tokens(tiny_source, images[0], *CASES[0], 12) == fresh[(0, CASES[0][0])]
