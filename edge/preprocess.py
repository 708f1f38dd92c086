"""Image in, model input out: the same pixels transformers' Florence-2 processor makes.

That processor (PIL backend) converts to RGB compositing alpha on white, resizes
straight to the model's square size with Pillow, rescales in float64, casts to
float32, then normalizes in float32. Doing the same steps in the same order gives
bit-identical `pixel_values`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edge.errors import FlorenceEdgeError

# A decompression bomb guard that still admits 100-megapixel camera stills.
Image.MAX_IMAGE_PIXELS = 200_000_000


def load_image(image) -> Image.Image:
    """A path, PIL image or HxWx3 / HxW uint8 array as an RGB PIL image."""
    if isinstance(image, (str, os.PathLike)):
        image = _open(Path(image))
    elif isinstance(image, np.ndarray):
        image = _from_array(image)
    elif not isinstance(image, Image.Image):
        raise FlorenceEdgeError(f"unsupported image type {type(image).__name__}: pass a path, PIL image or array")
    return to_rgb(image)


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise FlorenceEdgeError(f"image not found: {path}")
    if path.stat().st_size == 0:
        raise FlorenceEdgeError(f"image file is empty: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise FlorenceEdgeError(f"cannot read image {path}: {exc}") from None


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or array.size == 0:
        raise FlorenceEdgeError(f"image array must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise FlorenceEdgeError(f"image array must be uint8 or uint16, got {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(array))


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: keep the top 8 bits (convert("RGB") would clip to white). Pillow before 10
        # opens a 16-bit PNG as "I": values that fit 16 bits are taken as 16-bit.
        values = np.asarray(image, dtype=np.int64)
        sixteen = image.mode.startswith("I;16") or (values.min() >= 0 and values.max() <= 0xFFFF)
        image = Image.fromarray((np.clip(values, 0, None) >> (8 if sixteen else 24)).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def pixel_values(image: Image.Image, size: tuple[int, int], mean, std, resample: int,
                 rescale: float = 1 / 255) -> np.ndarray:
    """[1, 3, H, W] float32 for an RGB image; size is (height, width)."""
    height, width = size
    resized = np.asarray(image.resize((width, height), resample=Image.Resampling(resample)))
    scaled = (resized.astype(np.float64) * rescale).astype(np.float32)
    normed = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(normed.transpose(2, 0, 1)[None])
