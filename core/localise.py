"""The paper's weakly-supervised localisation (Selvaraju et al., ICCV 2017, Section 4.1).

A [0, 1] map M at the image's size is thresholded at a fraction t of its maximum,

    R = {pixels where M > t · max M}        (t = 0.15 in the paper),

the largest 8-connected component of R is kept, and its bounding box is the localisation. Boxes
are (left, top, right, bottom) in image pixels with right and bottom exclusive, so the box's
width is right − left and the pixel (x, y) is inside when left ≤ x < right and top ≤ y < bottom.

A low t grows the box towards everything the map touches; a high t shrinks it to the peak. Maps
from shallow stages are sharp but cover only the most telling part of the object, so their boxes
are tight and partial.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

DEFAULT_THRESHOLD = 0.15


class Box(NamedTuple):
    """(left, top, right, bottom) in image pixels; right and bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)


def check_threshold(threshold: float) -> float:
    """The threshold as a float, or a ValueError that says what a threshold is."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) or not 0 <= threshold < 1:
        raise ValueError(
            f"the box threshold is a fraction of the map's maximum, at least 0 and below 1 (the paper uses 0.15); got {threshold!r}"
        )
    return float(threshold)


def localise(cam01: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> Box | None:
    """The bounding box of the largest connected region where the map exceeds threshold × its max.

    None when the map has no positive value (nothing to localise). Ties between equally large
    regions go to the first in raster order.
    """
    threshold = check_threshold(threshold)
    cam = np.asarray(cam01, dtype=np.float32)
    if cam.ndim != 2 or cam.size == 0:
        raise ValueError(f"the map must be a 2-D (height, width) array, not of shape {cam.shape}")
    if not np.isfinite(cam).all():
        raise ValueError("the map has NaN or infinite values; pass a map from Explanation.cam")
    peak = float(cam.max())
    if peak <= 0:
        return None
    region = (cam > threshold * peak).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    # Label 0 is the background; the peak itself always exceeds t·peak, so count ≥ 2.
    largest = 1 + int(np.argmax(stats[1:count, cv2.CC_STAT_AREA]))
    left, top, width, height = (int(stats[largest, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    return Box(left, top, left + width, top + height)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes: |a ∩ b| / |a ∪ b|, 0 when they do not meet."""
    inside = Box(max(a.left, b.left), max(a.top, b.top), min(a.right, b.right), min(a.bottom, b.bottom)).area
    union = a.area + b.area - inside
    return inside / union if union > 0 else 0.0
