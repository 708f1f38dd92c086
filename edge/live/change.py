"""Has the scene changed since the last frame the vision graph saw? A cheap look at a thumbnail."""

from __future__ import annotations

import numpy as np
from PIL import Image

from edge.errors import FlorenceEdgeError

THUMBNAIL = (32, 32)
DEFAULT_THRESHOLD = 0.03


def thumbnail(image: np.ndarray) -> np.ndarray:
    """32x32 grey, each pixel the mean of its block: sensor noise averages out, a moved object does not."""
    grey = Image.fromarray(image).convert("L")
    return np.asarray(grey.resize(THUMBNAIL, Image.Resampling.BOX), dtype=np.float32) / 255


class ChangeDetector:
    """`changed(image)`: True when the mean absolute difference between `image`'s thumbnail and that of
    the last frame it said True for is at least `threshold` (0 to 1; 0: every frame is a change).

    Comparing with the last encoded frame, not the previous one, lets a slow drift add up."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        if not 0 <= threshold <= 1:
            raise FlorenceEdgeError(f"the change threshold is between 0 and 1, got {threshold}")
        self.threshold = threshold
        self._last: np.ndarray | None = None
        self.difference = 1.0  # of the latest frame, for the status line and tuning

    def changed(self, image: np.ndarray) -> bool:
        if self.threshold == 0:  # off: no thumbnail to pay for
            return True
        thumb = thumbnail(image)
        self.difference = 1.0 if self._last is None else float(np.abs(thumb - self._last).mean())
        if self.difference >= self.threshold:
            self._last = thumb
            return True
        return False
