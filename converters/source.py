"""Open a Florence-2 checkpoint (hub id or local directory) for conversion."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from converters.errors import ConversionError

# Microsoft's original repos load through remote code with their own class names;
# transformers' native port lives in the florence-community organisation.
_REMOTE_CODE_HINT = (
    "{src} is Microsoft's original remote-code layout (model_type 'florence2' with a 'florence2_language' "
    "text model); pass the native transformers checkpoint instead, e.g. florence-community/Florence-2-base "
    "or florence-community/Florence-2-large, or a fine-tune saved with transformers' "
    "Florence2ForConditionalGeneration"
)


@dataclass
class Source:
    model: object  # Florence2ForConditionalGeneration, eval mode, eager attention
    processor: object  # Florence2Processor
    ident: str
    revision: str | None

    @property
    def image_processor(self):
        return self.processor.image_processor

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.image_processor.size
        return int(size["height"]), int(size["width"])

    @property
    def image_tokens(self) -> int:
        return int(self.processor.num_image_tokens)


# Florence-2's image position embeddings are learned tables of this many rows and columns.
_MAX_GRID = 50


def num_image_tokens(image_size: int) -> int:
    # DaViT downsamples by 32 overall; the projector appends one pooled token.
    side = image_size // 32
    return side * side + 1


def check_image_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size % 32 or not 32 <= size <= 32 * _MAX_GRID:
        raise ConversionError(f"--image-size must be a multiple of 32 from 32 to {32 * _MAX_GRID} (the model's "
                              f"position tables hold {_MAX_GRID} rows and columns), got {size}")


def resize_source(source: Source, size: int) -> None:
    """Have the processor feed `size` x `size` pictures: the bundle and the PyTorch reference it is
    verified against then both run the smaller (or larger) grid. Accuracy at another size than the
    checkpoint's is the checkpoint's business, not measured here."""
    check_image_size(size)
    processor = source.image_processor
    processor.size = {"height": size, "width": size}
    processor.image_seq_length = num_image_tokens(size)
    source.processor.num_image_tokens = processor.image_seq_length


def load_source(src: str) -> Source:
    """Load model and processor; every failure becomes one ConversionError line."""
    path = Path(src).expanduser()
    if path.exists():
        _check_local(path)
    elif src.startswith((".", "/", "~")) or src.count("/") != 1:
        raise ConversionError(f"{src}: no such directory, and not a hub id of the form owner/name")
    from transformers import AutoProcessor, Florence2ForConditionalGeneration

    where = str(path) if path.exists() else src
    try:
        model = Florence2ForConditionalGeneration.from_pretrained(where, attn_implementation="eager", dtype="float32")
        processor = AutoProcessor.from_pretrained(where, backend="pil")
    except OSError as exc:
        raise ConversionError(f"cannot load {src}: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in any of a dozen libraries' own ways
        raise ConversionError(f"{src} is not a loadable Florence-2 checkpoint: {_first_line(exc)}") from None
    if type(processor).__name__ != "Florence2Processor":
        raise ConversionError(f"{src} has a {type(processor).__name__}, not a Florence2Processor")
    model.eval()
    revision = getattr(model.config, "_commit_hash", None)
    return Source(model, processor, src, revision)


def _check_local(path: Path) -> None:
    if not path.is_dir():
        raise ConversionError(f"{path} is a file; pass a checkpoint directory or a hub id")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"{path} is not a Florence-2 checkpoint: no config.json")
    try:
        config = json.loads(config_path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"{config_path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ConversionError(f"{config_path} is not a model config: it holds a {type(config).__name__}, "
                              "not an object")
    if config.get("model_type") != "florence2":
        raise ConversionError(
            f"{path} is not a Florence-2 checkpoint (model_type is {config.get('model_type')!r})"
        )
    text_type = (config.get("text_config") or {}).get("model_type")
    if "auto_map" in config or text_type == "florence2_language":
        raise ConversionError(_REMOTE_CODE_HINT.format(src=path))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
