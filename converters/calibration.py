"""Pictures a static recipe calibrates the vision graph's activation ranges on.

The user's own pictures where they point at some (the ranges then fit what the camera sees);
otherwise scenes drawn by `edge.demo.scenes`, from the seeds the demo model was trained on, so the
demo model calibrates on its own kind of picture and any checkpoint gets shapes, text and colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from converters.errors import ConversionError
from edge.manifest import VISION

DEFAULT_PICTURES = 32
_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def calibration_pictures(folder: str | None = None, count: int = DEFAULT_PICTURES) -> tuple[list[Image.Image], str]:
    """Up to `count` pictures and a line saying what they are, for the manifest."""
    if folder is None:
        from edge.demo.scenes import make_scene

        return [make_scene(seed).image for seed in range(count)], f"{count} drawn scenes (seeds 0-{count - 1})"
    paths = sorted(p for p in Path(folder).expanduser().glob("*") if p.suffix.lower() in _SUFFIXES)
    if not paths:
        raise ConversionError(f"--calibration-images {folder}: no .jpg/.png/.bmp/.webp pictures there")
    pictures = []
    for path in paths[:count]:
        try:
            with Image.open(path) as img:
                pictures.append(img.convert("RGB"))
        except (OSError, UnidentifiedImageError):
            raise ConversionError(f"--calibration-images: cannot read {path} as a picture") from None
    return pictures, f"{len(pictures)} pictures from {folder}"


def vision_samples(source, pictures: list[Image.Image]) -> dict:
    """The vision graph's calibration inputs: each picture as the checkpoint's processor prepares it,
    flat as the graph takes it."""
    processor = source.image_processor
    return {VISION: [{"pixel_values": np.asarray(processor(images=p, return_tensors="np")["pixel_values"],
                                                 np.float32).reshape(-1)} for p in pictures]}
