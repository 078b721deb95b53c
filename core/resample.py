"""Bilinear resampling of maps, written so that the page can repeat it bit for bit.

The weights are torch's antialiased bilinear (``F.interpolate(..., mode="bilinear",
align_corners=False, antialias=True)``): enlarging, that is plain bilinear with half-pixel
centres and clamped edges (OpenCV's INTER_LINEAR); shrinking, a triangle filter as wide as the
scale. Each output is a sum of weighted taps, added in order in float64, one axis after the
other (columns, then rows): ``demo/viewer.js`` does exactly these operations in the same order,
so a map drawn in the page has the same levels as the server's, not merely close ones (a one-
level difference is a four-level jump in jet's colours).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=256)
def axis_taps(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (out_len, taps): output i = Σ_k weights[i, k] · input[indices[i, k]].

    center_i = s·(i + ½) with s = in/out; taps j with |(j − center_i + ½)·min(1, 1/s)| < 1 weigh
    1 − |(j − center_i + ½)·min(1, 1/s)|, normalised to sum to 1.
    """
    if in_len < 1 or out_len < 1:
        raise ValueError(f"cannot resample {in_len} samples to {out_len}")
    scale = in_len / out_len
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    centers = scale * (np.arange(out_len) + 0.5)
    first = np.maximum(np.trunc(centers - support + 0.5), 0).astype(np.int64)
    last = np.minimum(np.trunc(centers + support + 0.5), in_len).astype(np.int64)
    taps = int((last - first).max())
    indices = first[:, None] + np.arange(taps)[None, :]
    weights = np.maximum(0.0, 1.0 - np.abs((indices - centers[:, None] + 0.5) * invscale))
    weights[indices >= last[:, None]] = 0.0
    totals = np.zeros(out_len)
    for k in range(taps):  # in order, as the page adds them
        totals = totals + weights[:, k]
    weights = np.divide(weights, totals[:, None], out=np.zeros_like(weights), where=totals[:, None] > 0)
    indices = np.minimum(indices, in_len - 1)
    indices.flags.writeable = weights.flags.writeable = False
    return indices, weights


def _along(values: np.ndarray, axis: int, out_len: int) -> np.ndarray:
    indices, weights = axis_taps(values.shape[axis], out_len)
    shape = [1] * values.ndim
    shape[axis] = out_len
    total = np.zeros(values.shape[:axis] + (out_len,) + values.shape[axis + 1 :])
    for k in range(indices.shape[1]):
        total = total + weights[:, k].reshape(shape) * np.take(values, indices[:, k], axis=axis)
    return total


def resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., h, w) maps → (..., height, width) float64, for size = (width, height)."""
    width, height = size
    values = np.asarray(maps, dtype=np.float64)
    if values.shape[-1] != width:
        values = _along(values, values.ndim - 1, width)
    if values.shape[-2] != height:
        values = _along(values, values.ndim - 2, height)
    return values
