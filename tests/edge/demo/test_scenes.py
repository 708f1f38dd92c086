import numpy as np
import pytest

from edge import postprocess
from edge.demo.scenes import BINS, CANVAS, GRID, SHAPES, SIDES, iou, make_scene, quantize, training_examples


def test_scenes_are_deterministic_by_seed():
    a, b = make_scene(7), make_scene(7)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.shapes == b.shapes and a.words == b.words
    assert not np.array_equal(np.asarray(a.image), np.asarray(make_scene(8).image))


@pytest.mark.parametrize("seed", range(40))
def test_targets_parse_back_with_florence2_post_processing(seed):
    scene = make_scene(seed)
    assert 1 <= len(scene.shapes) + len(scene.words) <= 5 and scene.shapes
    examples = {task: (text, target) for task, text, target in training_examples(scene, np.random.default_rng(0))}
    bin_px = max(scene.size) / BINS + 1

    od = postprocess.boxes_with_labels(examples["<OD>"][1], scene.size)
    assert od["labels"] == [s.shape for s in scene.shapes] and set(od["labels"]) <= set(SHAPES)
    for got, shape in zip(od["bboxes"], scene.shapes):
        assert np.allclose(got, shape.box, atol=bin_px)

    ocr = postprocess.ocr(examples["<OCR_WITH_REGION>"][1], scene.size)
    assert ocr["labels"] == [w.text for w in scene.words]
    assert postprocess.pure_text(examples["<OCR>"][1]).split() == [w.text for w in scene.words]

    text, target = examples["<REFERRING_EXPRESSION_SEGMENTATION>"]
    polygon = postprocess.polygons(target, scene.size)["polygons"][0][0]
    shape = next(s for s in scene.shapes if f"the {s.name}" == text)
    assert np.allclose(polygon, shape.polygon, atol=bin_px)

    grounded = postprocess.phrase_grounding(examples["<CAPTION_TO_PHRASE_GROUNDING>"][1], scene.size)
    assert grounded["labels"] == [f"a {s.name}" for s in scene.shapes]


def test_quantize_matches_florence2_bins():
    assert quantize([0, 0, 639.9, 479.9], (640, 480)) == [0, 0, 999, 999]
    assert quantize([320, 240], (640, 480)) == [500, 500]


@pytest.mark.parametrize("seed", range(20))
def test_scenes_place_everything_on_the_grid_without_overlap(seed):
    scene = make_scene(seed)
    assert scene.size == (CANVAS, CANVAS)
    boxes = [s.box for s in scene.shapes] + [w.box for w in scene.words]
    for shape in scene.shapes:
        x1, y1, x2, y2 = shape.box
        assert x1 % GRID == 0 and y1 % GRID == 0 and x2 - x1 in SIDES and y2 - y1 == x2 - x1
    for box in boxes:
        assert 0 <= box[0] < box[2] <= CANVAS and 0 <= box[1] < box[3] <= CANVAS
    assert all(iou(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_the_declared_tasks_are_the_trained_ones():
    import json
    from pathlib import Path

    from edge.demo.scenes import TASKS

    scene = make_scene(3)
    assert tuple(task for task, _, _ in training_examples(scene, np.random.default_rng(0))) == TASKS
    config = Path(__file__).resolve().parents[3] / "models" / "florence2-shapes" / "config.json"
    assert json.loads(config.read_text())["trained_tasks"] == list(TASKS)
