"""Write small random Florence-2 checkpoints that load like real ones.

Tests and benchmarks cannot download weights, so they use checkpoints written here:
the same directory layout as a native transformers checkpoint (config, safetensors,
tokenizer with Florence-2's added tokens, processor config), random weights.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from transformers import (
    BartConfig,
    BartTokenizer,
    CLIPImageProcessorPil,
    Florence2Config,
    Florence2ForConditionalGeneration,
    Florence2Processor,
)
from transformers.tokenization_utils_base import AddedToken

from converters.florence2_vocab import BANNED_GROUNDING_TOKENS, FLORENCE2_ADDED_TOKENS
from converters.source import num_image_tokens

# Every task prompt: in a toy BPE vocabulary's corpus, prompts tokenize into a handful
# of pieces as they do with BART's vocabulary.
PROMPT_CORPUS = [
    "What is the text in the image? What is the text in the image, with regions?",
    "What does the image describe? Describe in detail what is shown in the image.",
    "Describe with a paragraph what is shown in the image.",
    "Locate the objects with category name in the image.",
    "Locate the objects in the image, with their descriptions.",
    "Locate the region proposals in the image. Locate the phrases in the caption:",
    "Locate in the image with mask. What is the polygon mask of region",
    "What is the region? What does the region describe? What text is in the region?",
]
_CORPUS = [
    *PROMPT_CORPUS,
    "a red circle and a blue square, a green triangle, a yellow star, a car, a dog, a person",
    "black white orange purple cat tree house road sky word hello text sign",
] * 4

# Sizes by name. "base" and "large" follow the published checkpoints (vocab padded
# to a multiple of 64 as the native checkpoints are); "tiny" keeps tests fast.
SIZES = {
    "tiny": dict(
        image_size=64, vision_dims=(16, 32, 48, 64), vision_heads=(1, 2, 3, 4), vision_depths=(1, 1, 1, 1),
        window_size=2, d_model=64, layers=2, heads=4, ffn=128, vocab_pad=None,
    ),
    "base": dict(
        image_size=768, vision_dims=(128, 256, 512, 1024), vision_heads=(4, 8, 16, 32), vision_depths=(1, 1, 9, 1),
        window_size=12, d_model=768, layers=6, heads=12, ffn=3072, vocab_pad=51328,
    ),
    "large": dict(
        image_size=768, vision_dims=(256, 512, 1024, 2048), vision_heads=(8, 16, 32, 64), vision_depths=(1, 1, 9, 1),
        window_size=12, d_model=1024, layers=12, heads=16, ffn=4096, vocab_pad=51328,
    ),
    # Large's weight shapes (every stage width and head count, text width, padded vocabulary) with
    # one block and layer each and a small image: what large's conversion depends on, in seconds.
    "large-shapes": dict(
        image_size=64, vision_dims=(256, 512, 1024, 2048), vision_heads=(8, 16, 32, 64), vision_depths=(1, 1, 1, 1),
        window_size=2, d_model=1024, layers=1, heads=16, ffn=4096, vocab_pad=51328,
    ),
}


def build_tokenizer(corpus=_CORPUS, vocab_size: int = 400) -> BartTokenizer:
    """A byte-level BPE tokenizer learned from `corpus`, with BART's specials and Florence-2's added tokens."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=vocab_size, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        show_progress=False,
    )
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    vocab = dict(sorted(bpe.get_vocab().items(), key=lambda kv: kv[1]))
    vocab["<mask>"] = len(vocab)
    tok = BartTokenizer(vocab=vocab, merges=merges)
    added = [*FLORENCE2_ADDED_TOKENS, "<image>"]
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in added], special_tokens=True)
    # The image token must be a named special token (the processor reads
    # tokenizer.image_token); only a load can name it, so round-trip through disk.
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        return BartTokenizer.from_pretrained(tmp, extra_special_tokens={"image_token": "<image>"})


def build_config(size: str | dict, tokenizer: BartTokenizer) -> Florence2Config:
    """A Florence-2 config of a named size (or a dict of the same keys) for `tokenizer`."""
    s = SIZES[size] if isinstance(size, str) else size
    vocab_size = len(tokenizer)
    if s["vocab_pad"]:
        vocab_size = max(vocab_size, s["vocab_pad"])
    text = BartConfig(
        vocab_size=vocab_size, d_model=s["d_model"], encoder_layers=s["layers"], decoder_layers=s["layers"],
        encoder_attention_heads=s["heads"], decoder_attention_heads=s["heads"], encoder_ffn_dim=s["ffn"],
        decoder_ffn_dim=s["ffn"], max_position_embeddings=1024, scale_embedding=False,
        bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0,
        forced_eos_token_id=2, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    )
    vision = dict(
        embed_dim=list(s["vision_dims"]), num_heads=list(s["vision_heads"]), num_groups=list(s["vision_heads"]),
        depths=list(s["vision_depths"]), window_size=s["window_size"], projection_dim=s["d_model"],
        drop_path_rate=0.0,
    )
    return Florence2Config(
        text_config=text.to_dict(), vision_config=vision, image_token_id=tokenizer.image_token_id,
    )


def write_test_checkpoint(out_dir: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a random Florence-2 checkpoint of the named size; return its directory."""
    import torch

    out = Path(out_dir)
    tokenizer = build_tokenizer()
    config = build_config(size, tokenizer)
    torch.manual_seed(seed)
    model = Florence2ForConditionalGeneration(config).eval()
    _quiet_eos(model, config.text_config.eos_token_id)
    set_generation_defaults(model)
    save_checkpoint(model, tokenizer, SIZES[size]["image_size"], out)
    return out


def set_generation_defaults(model) -> None:
    """Florence-2's published generation settings."""
    g, text = model.generation_config, model.config.text_config
    g.forced_bos_token_id, g.forced_eos_token_id = text.bos_token_id, text.eos_token_id
    g.num_beams, g.no_repeat_ngram_size, g.early_stopping, g.max_new_tokens = 3, 3, True, 1024


def save_checkpoint(model, tokenizer, image_size: int, out: Path) -> None:
    """Save model and a Florence2Processor beside it, as a native checkpoint directory."""
    model.save_pretrained(out)
    image_processor = CLIPImageProcessorPil(
        size={"height": image_size, "width": image_size}, do_center_crop=False, do_resize=True, resample=3,
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225], do_convert_rgb=True,
    )
    image_processor.image_seq_length = num_image_tokens(image_size)
    processor = Florence2Processor(
        image_processor=image_processor, tokenizer=tokenizer, post_processor_config=post_processor_config()
    )
    processor.save_pretrained(out)


def _quiet_eos(model, eos_id: int) -> None:
    """Shrink the (tied) `</s>` embedding so random weights rarely stop at once.

    Random models otherwise often emit `</s>` as their second token, and a
    two-token output tests no decoding at all.
    """
    import torch

    with torch.no_grad():
        model.get_input_embeddings().weight[eos_id] *= 0.05


def post_processor_config() -> dict:
    return {
        "ocr": {"pattern": r"(.+?)" + r"<loc_(\d+)>" * 8, "area_threshold": 0.0},
        "phrase_grounding": {"banned_grounding_tokens": list(BANNED_GROUNDING_TOKENS)},
        "pure_text": {}, "description_with_bboxes": {}, "description_with_polygons": {}, "polygons": {},
        "bboxes": {}, "description_with_bboxes_or_polygons": {},
    }


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="write a random Florence-2 checkpoint for tests and benchmarks")
    parser.add_argument("output", help="directory to write")
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_test_checkpoint(args.output, args.size, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
