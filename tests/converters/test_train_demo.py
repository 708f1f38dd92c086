import csv
import math

import numpy as np
import pytest
import torch
from transformers import Florence2ForConditionalGeneration

from converters import train_demo
from converters.test_checkpoints import build_tokenizer
from converters.train_demo import DENSE_CLASSES, TeacherTokens, dense_targets, scene_corpus, teacher_share
from edge.demo.scenes import COLOURS, SHAPES, WORDS, make_scene, training_examples


@pytest.mark.parametrize("seed", range(30))
def test_dense_targets_give_every_object_a_cell_holding_its_class_and_box(seed):
    scene = make_scene(seed)
    grid = 6
    dense = dense_targets(scene, grid)
    width, height = scene.size
    for obj, name in [(s, s.name) for s in scene.shapes] + [(w, w.text) for w in scene.words]:
        cells = dense[:, DENSE_CLASSES.index(name)] == 1.0
        assert cells.any(), f"{name} owns no cell"
        x1, y1, x2, y2 = obj.box
        assert np.allclose(dense[cells, -5:], (x1 / width, y1 / height, x2 / width, y2 / height, 1.0))
    assert (dense[:, : len(DENSE_CLASSES)].sum(1) <= 1).all()  # one object per cell
    empty = dense[:, -1] == 0
    assert not dense[empty].any()


def test_demo_tokenizer_keeps_every_label_and_word_one_token_wherever_it_appears():
    # A label split in three would repeat a 3-gram on its second object, which
    # no_repeat_ngram_size=3 forbids: OD lost its repeated labels that way.
    tok = build_tokenizer(scene_corpus(), vocab_size=512)
    vocabulary = {*SHAPES, *COLOURS, *WORDS, "a", "and", ","}
    for seed in range(40):
        for task, _, target in training_examples(make_scene(seed), np.random.default_rng(seed)):
            tokens = [t for t in tok.tokenize(target) if not t.startswith("<loc_")]
            pieces = [tok.convert_tokens_to_string([t]).strip() for t in tokens]
            assert set(pieces) <= vocabulary, (task, target, pieces)


def test_teacher_tokens_are_fixed_by_seed_and_shaped_like_the_projector_output():
    dense = torch.from_numpy(np.stack([dense_targets(make_scene(s), 6) for s in range(4)]))
    a, b = TeacherTokens(36, 32, seed=0), TeacherTokens(36, 32, seed=0)
    tokens = a(dense)
    assert tokens.shape == (4, 37, 32)
    assert torch.equal(tokens, b(dense))
    assert torch.allclose(tokens[:, 0], tokens[:, 1:].mean(1))
    assert not torch.allclose(tokens[0], tokens[1])  # different scenes, different tokens
    assert not torch.equal(tokens, TeacherTokens(36, 32, seed=1)(dense))


def test_teacher_share_hands_over_linearly():
    assert teacher_share(0, 100, 0.6) == 1.0
    assert math.isclose(teacher_share(30, 100, 0.6), 0.5)
    assert teacher_share(60, 100, 0.6) == 0.0 and teacher_share(99, 100, 0.6) == 0.0


def test_a_short_training_run_writes_a_loadable_checkpoint_and_a_loss_log(tmp_path):
    train_demo.main(["-o", str(tmp_path), "--steps", "3", "--batch", "2", "--scenes", "8", "--threads", "2"])
    model = Florence2ForConditionalGeneration.from_pretrained(tmp_path)
    assert model.config.vision_config.embed_dim[-1] == train_demo.DEMO_SIZE["vision_dims"][-1]
    with open(tmp_path / "train_log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [0, 2]
    assert all(math.isfinite(float(r["loss"])) and float(r["vision_loss"]) > 0 for r in rows)
