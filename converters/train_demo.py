"""Train the demo model: a small Florence-2 on synthetic scenes (`edge.demo.scenes`), from a seed.

    python -m converters.train_demo -o models/florence2-shapes

Same architecture and checkpoint format as the published models (transformers'
`Florence2ForConditionalGeneration` + `Florence2Processor`), only smaller, so the
normal converter and runtime take it unchanged. Each step encodes a batch of images
once and trains every task on every image's features; the two halves of the model
meet at teacher tokens (see `TeacherTokens`).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm
from transformers import AutoProcessor, Florence2ForConditionalGeneration

from converters.test_checkpoints import (
    PROMPT_CORPUS,
    build_config,
    build_tokenizer,
    save_checkpoint,
    set_generation_defaults,
)
from edge.demo.scenes import COLOURS, SHAPES, TASKS, WORDS, caption, intersection, make_scene, training_examples

# Small enough to train in under 45 minutes on 2 cores, same architecture as base.
# 192 px costs half of 256 px in the vision tower and still renders words legibly.
DEMO_SIZE = dict(
    image_size=192, vision_dims=(32, 64, 128, 192), vision_heads=(1, 2, 4, 6), vision_depths=(1, 1, 2, 1),
    window_size=6, d_model=192, layers=3, heads=4, ffn=512, vocab_pad=None,
)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LABELS = [f"{c} {s}" for c in COLOURS for s in SHAPES]  # a shape's name, as `Shape.name` gives it


def scene_corpus() -> list[str]:
    """What the demo tokenizer learns its merges from: the prompts and the scenes' words.

    Prompts in the corpus keep them a handful of tokens long; spelled out byte by byte
    they were most of every training sequence. Labels and words appear bare too (after
    `<loc_N>` in OD, first in REGION_TO_CATEGORY and OCR) and must be one token there as
    well: a label split in three repeats a 3-gram on its second object, which Florence-2's
    default no_repeat_ngram_size=3 then forbids (OD mAP 0.80 instead of 0.97).
    """
    words = [f"a {label}" for label in LABELS] + LABELS + list(SHAPES) + [f"{w} {w}" for w in WORDS]
    words += ["the", "and", ","]
    return (PROMPT_CORPUS + words + [caption(make_scene(seed)) for seed in range(200)]) * 3


# What covers each cell of the vision tower's last feature map (one channel per colour
# and shape, one per word) and that object's box in image coordinates: the content of
# the teacher tokens.
DENSE_CLASSES = LABELS + list(WORDS)
DENSE_CHANNELS = len(DENSE_CLASSES) + 5  # classes, 4 box edges, "has a box"


def dense_targets(scene, grid: int) -> np.ndarray:
    """[grid * grid, DENSE_CHANNELS] targets, cells in row-major order as the projector flattens them.

    A cell holds the object covering most of it, so every object, however thin (a line
    of text can fall between two rows of cell centres), owns at least one cell.
    """
    out = np.zeros((grid, grid, DENSE_CHANNELS), np.float32)
    width, height = scene.size
    objects = [(DENSE_CLASSES.index(s.name), s.box) for s in scene.shapes]
    objects += [(DENSE_CLASSES.index(w.text), w.box) for w in scene.words]
    cw, ch = width / grid, height / grid
    for row in range(grid):
        for col in range(grid):
            cell = (col * cw, row * ch, (col + 1) * cw, (row + 1) * ch)
            cover = [(intersection(cell, box), cls, box) for cls, box in objects]
            area, cls, (x1, y1, x2, y2) = max(cover, default=(0.0, 0, (0, 0, 0, 0)))
            if area > 0:
                out[row, col, cls] = 1.0
                out[row, col, -5:] = (x1 / width, y1 / height, x2 / width, y2 / height, 1.0)
    return out.reshape(grid * grid, DENSE_CHANNELS)


def render_dataset(seeds, image_size: int, grid: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Scenes resized to the model's input (uint8, as the processor resizes), dense targets, scene objects."""
    images = np.empty((len(seeds), image_size, image_size, 3), np.uint8)
    dense = np.empty((len(seeds), grid * grid, DENSE_CHANNELS), np.float32)
    scenes = []
    for i, seed in enumerate(tqdm(seeds, desc="render scenes", leave=False)):
        scene = make_scene(seed)
        images[i] = np.asarray(scene.image.resize((image_size, image_size), Image.Resampling.BICUBIC))
        dense[i] = dense_targets(scene, grid)
        scene.image = None  # keep the ground truth, drop the pixels
        scenes.append(scene)
    return images, dense, scenes


class TeacherTokens:
    """Image tokens computed from the ground truth: what the text model learns to read first.

    From scratch, the decoder learns the output format long before it learns to read the
    vision tower, whose features meanwhile drift towards a constant (in 45 minutes it
    never caught up). So both halves learn against a fixed meeting point instead: the text
    model reads these tokens, which carry every cell's objects and boxes, while the vision
    tower regresses them; the text model then moves over to the vision tower's tokens.
    A fixed random code (seeded) keeps the target still while the vision tower chases it.
    """

    def __init__(self, cells: int, width: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.code = torch.randn(DENSE_CHANNELS, width, generator=g)
        self.position = torch.randn(cells, width, generator=g)

    def __call__(self, dense: torch.Tensor) -> torch.Tensor:
        """[B, cells, DENSE_CHANNELS] -> [B, 1 + cells, width], a pooled token first as the projector has."""
        cells = torch.nn.functional.layer_norm(dense @ self.code + self.position, (self.code.shape[1],))
        return torch.cat([cells.mean(1, keepdim=True), cells], dim=1)


def teacher_share(step: int, steps: int, handover: float) -> float:
    """Share of images the text model sees as teacher tokens: all at first, none after `handover`."""
    return max(0.0, 1.0 - step / (handover * steps))


def _normalize(batch: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(batch).float().div_(255.0)
    x = (x - torch.tensor(MEAN)) / torch.tensor(STD)
    return x.permute(0, 3, 1, 2).contiguous()


class Batcher:
    """Prompt and label ids for (image, task) pairs, with the processor's prompt format."""

    def __init__(self, processor):
        self.tok = processor.tokenizer
        self.prompts = {**processor.task_prompts_without_inputs, **processor.task_prompts_with_input}

    def encode(self, examples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        prompts, targets = [], []
        for task, text, target in examples:
            prompt = self.prompts[task].format(input=text) if text is not None else self.prompts[task]
            prompts.append(f"<s>{prompt}</s>")
            targets.append(f"<s>{target}</s>")
        p = self.tok(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
        t = self.tok(targets, add_special_tokens=False, padding=True, return_tensors="pt")
        labels = t["input_ids"].masked_fill(t["attention_mask"] == 0, -100)
        return p["input_ids"], p["attention_mask"], labels


class DemoTrainer:
    """The demo model, its data and optimiser; `step()` trains every task on one batch of images."""

    def __init__(self, out: Path, steps: int, scenes: int, seed: int, lr: float, handover: float):
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.steps, self.handover = steps, handover
        self.tokenizer = build_tokenizer(scene_corpus(), vocab_size=512)
        config = build_config(DEMO_SIZE, self.tokenizer)
        # The published configs' 0.02 init is sized for 768-1024 wide layers.
        config.initializer_range = DEMO_SIZE["d_model"] ** -0.5
        self.model = Florence2ForConditionalGeneration(config)
        set_generation_defaults(self.model)
        self.model.generation_config.max_new_tokens = 256
        out.mkdir(parents=True, exist_ok=True)
        self.save(out)  # writes the processor we train against
        processor = AutoProcessor.from_pretrained(out, backend="pil")
        self.batcher = Batcher(processor)
        self.n_image = processor.num_image_tokens
        grid = int(round((self.n_image - 1) ** 0.5))
        self.images, dense, self.truth = render_dataset(range(scenes), DEMO_SIZE["image_size"], grid)
        self.dense = torch.from_numpy(dense)
        self.teacher = TeacherTokens(grid * grid, config.text_config.d_model, seed)
        self.opt, self.sched = self._optimizer(lr)
        self.model.train()

    def _optimizer(self, lr: float):
        # The vision tower learns only from the teacher tokens, at twice the text model's rate.
        model = self.model
        vision = [*model.model.vision_tower.parameters(), *model.model.multi_modal_projector.parameters()]
        vision_ids = {id(p) for p in vision}
        text = [p for p in model.parameters() if id(p) not in vision_ids]
        opt = torch.optim.AdamW([{"params": text, "lr": lr}, {"params": vision, "lr": 2 * lr}],
                                betas=(0.9, 0.98), weight_decay=0.01)
        steps, warmup = self.steps, max(1, min(200, self.steps // 10))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps))))
        return opt, sched

    def step(self, step: int, batch: int) -> tuple[float, float]:
        """One optimiser step; returns (text loss, vision loss)."""
        model, rng = self.model, self.rng
        idx = rng.choice(len(self.truth), size=batch, replace=False)
        rows, examples = [], []
        for row, i in enumerate(idx):
            # Every task on every image: one vision pass serves seven sequences.
            for example in training_examples(self.truth[i], rng):
                rows.append(row)
                examples.append(example)
        prompt_ids, prompt_mask, labels = self.batcher.encode(examples)
        image_features = model.model.get_image_features(_normalize(self.images[idx])).pooler_output
        target = self.teacher(self.dense[idx])
        vision_loss = torch.nn.functional.mse_loss(image_features, target)
        share = teacher_share(step, self.steps, self.handover)
        from_teacher = torch.from_numpy(rng.random(batch) < share)[:, None, None]
        seen = torch.where(from_teacher, target, image_features.detach())
        embeds = torch.cat([seen[rows], model.get_input_embeddings()(prompt_ids)], dim=1)
        mask = torch.cat([torch.ones(len(rows), self.n_image, dtype=prompt_mask.dtype), prompt_mask], dim=1)
        loss = model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
        self.opt.zero_grad(set_to_none=True)
        (loss + vision_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        return loss.item(), vision_loss.item()

    def save(self, out: Path) -> None:
        save_checkpoint(self.model, self.tokenizer, DEMO_SIZE["image_size"], out)


def train(out: Path, steps: int, batch: int, scenes: int, seed: int, lr: float, handover: float) -> None:
    trainer = DemoTrainer(out, steps, scenes, seed, lr, handover)
    start = time.perf_counter()
    with open(out / "train_log.csv", "w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(["step", "loss", "vision_loss", "lr", "seconds"])
        bar = tqdm(range(steps), desc="train")
        for step in bar:
            loss, vision_loss = trainer.step(step, batch)
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{loss:.3f}", vision=f"{vision_loss:.3f}")
                log.writerow([step, f"{loss:.4f}", f"{vision_loss:.4f}", f"{trainer.sched.get_last_lr()[0]:.2e}",
                              f"{time.perf_counter() - start:.0f}"])
                fh.flush()
    trainer.model.eval()
    trainer.model.config.trained_tasks = list(TASKS)  # the bundle tells users which tasks mean something
    trainer.save(out)
    print(f"trained {steps} steps in {(time.perf_counter() - start) / 60:.1f} min; checkpoint in {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="train the demo Florence-2 on synthetic scenes")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--steps", type=int, default=3200)
    parser.add_argument("--batch", type=int, default=16, help="images per step (each trains every task)")
    parser.add_argument("--scenes", type=int, default=20000, help="training scenes (seeds 0..N-1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--handover", type=float, default=0.6,
                        help="fraction of the steps after which the text model reads only the vision tower")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(Path(args.output), args.steps, args.batch, args.scenes, args.seed, args.lr, args.handover)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
