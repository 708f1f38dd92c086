"""eval on the trained demo model: the pipeline end to end, and that the model really learned."""

from edge.demo.eval import evaluate, format_metrics
from edge.model import Florence2


def test_demo_fp32_bundle_is_token_exact(demo_fp32_bundle):
    tokens = demo_fp32_bundle[1]["parity"]["tokens"]
    assert tokens["exact"] == tokens["total"]


def test_eval_on_held_out_scenes(demo_fp32_bundle):
    model = Florence2(demo_fp32_bundle[0], num_threads=2)
    result = evaluate(model, scenes=20)
    text = format_metrics(result)
    assert "OD mAP@0.5" in text and "20 scenes" in text
    # The committed model's README figures, with room for 20 scenes' noise: chance is an
    # exact caption under 1 in 12 and a random polygon covering little of a shape.
    assert result["caption_exact"] >= 0.8
    assert result["grounding_recall50"] >= 0.8
    assert result["segmentation_mask_iou"] >= 0.8
    assert result["region_category_accuracy"] >= 0.8
    assert result["od_map50"] >= 0.8
    assert result["ocr_word_accuracy"] >= 0.8


def test_eval_command_rejects_bad_scene_count(demo_fp32_bundle, capsys):
    from edge.cli import main

    assert main(["eval", "-m", str(demo_fp32_bundle[0]), "--scenes", "0"]) == 2
    assert "--scenes must be at least 1" in capsys.readouterr().err
