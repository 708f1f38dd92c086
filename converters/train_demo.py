"""Train the demo model: a small Florence-2 on synthetic scenes (`edge.scenes`), from a seed.

    python -m converters.train_demo -o models/florence2-shapes

Same architecture and checkpoint format as the published models (transformers'
`Florence2ForConditionalGeneration` + `Florence2Processor`), only smaller, so the
normal converter and runtime take it unchanged. Each step encodes a batch of images
once and trains every task on every image's features.
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
from transformers import Florence2ForConditionalGeneration

from converters.test_checkpoints import build_config, build_tokenizer, save_checkpoint, set_generation_defaults
from edge.scenes import COLOURS, SHAPES, WORDS, caption, make_scene, training_examples

# Small enough to train in well under 45 minutes on 2 cores, same architecture as base.
# The vision tower dominates a step: 192 px costs half of 256 px and still renders words legibly.
DEMO_SIZE = dict(
    image_size=192, vision_dims=(32, 64, 128, 192), vision_heads=(1, 2, 4, 6), vision_depths=(1, 1, 2, 1),
    window_size=6, d_model=192, layers=3, heads=4, ffn=512, vocab_pad=None,
)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def scene_corpus() -> list[str]:
    """What the demo tokenizer learns its merges from: the scenes' words (prompts are not in it)."""
    words = [f"a {c} {s}" for c in COLOURS for s in SHAPES] + list(WORDS) + ["the", "and", ","]
    return (words + [caption(make_scene(seed)) for seed in range(200)]) * 3


def render_dataset(seeds, image_size: int) -> tuple[np.ndarray, list]:
    """Scenes resized to the model's input (uint8, as the processor resizes) and their scene objects."""
    images = np.empty((len(seeds), image_size, image_size, 3), np.uint8)
    scenes = []
    for i, seed in enumerate(tqdm(seeds, desc="render scenes", leave=False)):
        scene = make_scene(seed)
        images[i] = np.asarray(scene.image.resize((image_size, image_size), Image.Resampling.BICUBIC))
        scene.image = None  # keep the ground truth, drop the pixels
        scenes.append(scene)
    return images, scenes


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


def train(out: Path, steps: int, batch: int, scenes: int, seed: int, lr: float) -> None:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tokenizer = build_tokenizer(scene_corpus(), vocab_size=320)
    config = build_config(DEMO_SIZE, tokenizer)
    model = Florence2ForConditionalGeneration(config)
    set_generation_defaults(model)
    model.generation_config.max_new_tokens = 256
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, tokenizer, DEMO_SIZE["image_size"], out)  # writes the processor we train against
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(out, backend="pil")
    batcher = Batcher(processor)
    images, truth = render_dataset(range(scenes), DEMO_SIZE["image_size"])
    n_image = processor.num_image_tokens

    # BART's post-layer-norm stack trained from scratch stalls at 1e-3 (the decoder learns the
    # output format and ignores the image); 5e-4 with transformer betas trains.
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = min(200, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps))))
    model.train()
    log_path = out / "train_log.csv"
    start = time.perf_counter()
    with open(log_path, "w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(["step", "loss", "lr", "seconds"])
        bar = tqdm(range(steps), desc="train")
        for step in bar:
            idx = rng.choice(len(truth), size=batch, replace=False)
            rows, examples = [], []
            for row, i in enumerate(idx):
                # Every task on every image: the text side is cheap next to the vision tower.
                for example in training_examples(truth[i], rng):
                    rows.append(row)
                    examples.append(example)
            prompt_ids, prompt_mask, labels = batcher.encode(examples)
            features = model.model.get_image_features(_normalize(images[idx])).pooler_output[rows]
            embeds = torch.cat([features, model.get_input_embeddings()(prompt_ids)], dim=1)
            mask = torch.cat([torch.ones(len(rows), n_image, dtype=prompt_mask.dtype), prompt_mask], dim=1)
            loss = model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}")
                log.writerow([step, f"{loss.item():.4f}", f"{sched.get_last_lr()[0]:.2e}",
                              f"{time.perf_counter() - start:.0f}"])
                fh.flush()
    model.eval()
    save_checkpoint(model, tokenizer, DEMO_SIZE["image_size"], out)
    print(f"trained {steps} steps in {(time.perf_counter() - start) / 60:.1f} min; checkpoint in {out}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="train the demo Florence-2 on synthetic scenes")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--steps", type=int, default=2800)
    parser.add_argument("--batch", type=int, default=16, help="images per step (each trains every task)")
    parser.add_argument("--scenes", type=int, default=20000, help="training scenes (seeds 0..N-1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(Path(args.output), args.steps, args.batch, args.scenes, args.seed, args.lr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
