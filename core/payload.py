"""What the page needs to draw every view of an explanation itself, as one compact JSON-able dict.

After one network pass the page holds, per class and per method:

* the raw class map at each stage's own grid (7×7 … 56×56, or ViT's 14×14 tokens), and its
  counterfactual where the method has one;
* guided backprop at display size;

and, once per image, the original at display size and where the picture sat in the model input
(the letterbox box of ViT and MaxViT). Layer, class, opacity, colormap and the counterfactual
are then drawn in the browser by ``demo/viewer.js`` with the same upsampling, normalisation,
colour tables and blend as :mod:`core.views`, which stays the reference its pixels are tested
against.

Maps travel as their exact float32 values, as byte planes deflated and base64-encoded
(:func:`pack_array`): the page must reach the server's colour level at every pixel, and in jet
one level of the map can be four levels of colour (16-bit maps were 4 levels off).

Guided backprop travels as 12-bit levels, v = lo + (hi − lo) · q / 4095, over its mean ± 4 robust
spreads (the 99th percentile of |g − mean|, the scale ``core.render.gradient_image`` shows).
Fewer bits do not pay: on untrained resnet18/50 and ViT (five classes, every layer and
counterfactual), Guided Grad-CAM drawn from 12 bits was within one colour level of the float32
picture at every pixel; 11 bits was up to 2 levels off and 10 bits up to 3 (at the parity test's
limit), for 6% and 12% fewer bytes as byte planes; 8 bits over ± 1 spread was off by up to 65 levels (clipping
the 1% extreme values moves the product's own spread). The levels are coded losslessly instead
(:func:`pack_levels`): each less the mean of its left and upper neighbours, which a gradient's
spatial correlation makes small, took a 384×192 guided map from 366 to 326 KB of base64.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np

from core.engine import Explanation
from core.forward import STAGES
from core.methods import GRADIENT_METHODS, PERTURBATION_METHODS
from core.render import encode_lossless
from core.views import display_guided, display_original

GUIDED_BITS = 12
#: Guided backprop is clipped to its mean ± this many robust spreads before it is quantised.
GUIDED_RANGE = 4.0


def pack_array(values: np.ndarray) -> str:
    """The values' little-endian bytes as planes (every value's byte 0, then byte 1, …), deflated,
    base64: deflate finds the planes of exponents and high bytes nearly constant."""
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    planes = data.view(np.uint8).reshape(-1, data.itemsize).T
    # Level 1: a 384×192 guided map in 24 ms and 330 KB, against 104 ms and 322 KB at level 6.
    return base64.b64encode(zlib.compress(planes.tobytes(), 1)).decode("ascii")


def unpack_array(encoded: str, dtype: np.dtype | type, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`pack_array`."""
    dtype = np.dtype(dtype).newbyteorder("<")
    planes = np.frombuffer(zlib.decompress(base64.b64decode(encoded)), dtype=np.uint8).reshape(dtype.itemsize, -1)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(shape)


def pack_levels(levels: np.ndarray) -> str:
    """(height, width, channels) uint16 levels, losslessly: each level's difference from the mean
    (rounded down) of its left and upper neighbours (0 outside the picture), zigzagged (0, −1, 1,
    −2, … → 0, 1, 2, 3, …), one byte each below 255 and 255 for the rest, whose value − 255
    follows after the last pixel's byte: the low bytes of all of them, then the high bytes;
    Huffman-coded by deflate, base64.

    Noise-like gradients leave LZ77 nothing to find, so deflate codes symbols alone
    (Z_HUFFMAN_ONLY): 13% smaller than byte planes at level 1 for a 384×192 guided map, in the
    same 11 ms."""
    q = levels.astype(np.int32)
    left = np.zeros_like(q)
    left[:, 1:] = q[:, :-1]
    up = np.zeros_like(q)
    up[1:] = q[:-1]
    residual = (q - (left + up) // 2).ravel()
    zigzag = np.where(residual >= 0, 2 * residual, -2 * residual - 1)
    rest = zigzag[zigzag >= 255] - 255
    data = np.minimum(zigzag, 255).astype(np.uint8).tobytes() + (rest & 255).astype(np.uint8).tobytes() + (rest >> 8).astype(np.uint8).tobytes()
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    return base64.b64encode(deflate.compress(data) + deflate.flush()).decode("ascii")


def unpack_levels(encoded: str, shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of :func:`pack_levels`, as uint16 of ``shape`` (height, width, channels)."""
    height, width, channels = shape
    data = np.frombuffer(zlib.decompress(base64.b64decode(encoded)), dtype=np.uint8)
    count = height * width * channels
    zigzag = data[:count].astype(np.int32)
    escaped = zigzag == 255
    low, high = data[count:].reshape(2, -1).astype(np.int32)
    zigzag[escaped] += low + (high << 8)
    residual = np.where(zigzag % 2 == 0, zigzag // 2, -(zigzag + 1) // 2).tolist()
    q = [0] * count
    row = width * channels
    for i in range(count):  # each level needs its left and upper neighbours decoded first
        left = q[i - channels] if i % row >= channels else 0
        up = q[i - row] if i >= row else 0
        q[i] = (left + up) // 2 + residual[i]
    return np.array(q, dtype=np.uint16).reshape(shape)


def to_levels(values: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    """``values`` clipped to [lo, hi] as uint16 levels 0 … 2^bits − 1."""
    span = hi - lo
    scaled = (values.astype(np.float64) - lo) / span if span > 0 else np.zeros(values.shape)
    return np.rint(np.clip(scaled, 0.0, 1.0) * ((1 << bits) - 1)).astype(np.uint16)


def from_levels(levels: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    """lo + (hi − lo) · q / (2^bits − 1), as float32: what the page decodes."""
    return (lo + (hi - lo) * levels.astype(np.float64) / ((1 << bits) - 1)).astype(np.float32)


def map_key(method: str, class_idx: int, counterfactual: bool) -> str:
    """How the payload names a class's maps, e.g. "gradcam/281/0"."""
    return f"{method}/{int(class_idx)}/{int(bool(counterfactual))}"


def has_counterfactual(method: str) -> bool:
    return method in GRADIENT_METHODS


def _stage_maps(explanation: Explanation, class_idx: int, method: str, counterfactual: bool) -> list[dict[str, Any] | None]:
    maps: list[dict[str, Any] | None] = []
    for stage in STAGES:
        if method in GRADIENT_METHODS and not explanation.map_ready(class_idx, stage):
            maps.append(None)  # comes with the background completion: never a pass from here
            continue
        raw = explanation.cam(class_idx, stage, raw=True, counterfactual=counterfactual, method=method)
        maps.append({"grid": list(raw.shape), "values": pack_array(raw.astype(np.float32))})
    return maps


def class_maps(explanation: Explanation, class_idx: int, method: str) -> dict[str, list[dict[str, Any] | None]]:
    """The class's raw maps at layer1..layer4, and their counterfactuals where the method has one.

    A gradient method's stage whose gradients are not there yet is None: the page waits for it."""
    variants = (False, True) if has_counterfactual(method) else (False,)
    return {map_key(method, class_idx, cf): _stage_maps(explanation, class_idx, method, cf) for cf in variants}


def guided_levels(explanation: Explanation, class_idx: int, size: tuple[int, int]) -> dict[str, Any]:
    """The class's guided backprop at display size (width, height), as GUIDED_BITS levels
    (:func:`pack_levels`) and the lo and hi that :func:`from_levels` needs."""
    guided = display_guided(explanation, class_idx, size)
    mean = float(guided.mean())
    spread = float(np.percentile(np.abs(guided - mean), 99.0))
    if not np.isfinite(spread) or spread <= 0:
        spread = 0.0
    lo, hi = mean - GUIDED_RANGE * spread, mean + GUIDED_RANGE * spread
    return {"lo": lo, "hi": hi, "levels": pack_levels(to_levels(guided, lo, hi, GUIDED_BITS))}


def data_url(picture: np.ndarray) -> str:
    """A lossless WebP data URL: the browser decodes it to exactly these RGB values."""
    return "data:image/webp;base64," + base64.b64encode(encode_lossless(picture, ".webp")).decode("ascii")


def classes_piece(explanation: Explanation, key: str, classes: list[int], method: str, size: tuple[int, int], *, guided: bool = True) -> dict[str, Any]:
    """Maps, and guided backprop where it is stored, of more classes, for a page that already
    holds ``key``'s image."""
    piece = guided_piece(explanation, key, classes if guided else [], method, size)
    for c in classes:
        piece["maps"].update(class_maps(explanation, c, method))
    return piece


def guided_piece(explanation: Explanation, key: str, classes: list[int], method: str, size: tuple[int, int]) -> dict[str, Any]:
    """Guided backprop of those of ``classes`` that have it stored, and no maps."""
    stored = [c for c in classes if explanation.stored(c, guided=True)]
    return {"key": key, "method": method, "maps": {}, "guided": {str(int(c)): guided_levels(explanation, c, size) for c in stored}}


def prediction_rows(explanation: Explanation) -> list[dict[str, Any]]:
    """The top-k, best first, as the page reads them."""
    return [{"index": p.index, "label": p.label, "probability": p.probability} for p in explanation.predictions]


def first_view(explanation: Explanation, key: str, classes: list[int], method: str, size: tuple[int, int]) -> dict[str, Any]:
    """What a page needs to draw ``classes`` of a new explanation at display size (width, height),
    as far as the first pass has it (layer4's closed form gives every class's layer4 map at once).

    ``key`` names the explanation: pieces sent later with the same key add to it, and a page
    that meets a new key forgets the old one.
    """
    box = explanation.content_box if explanation.letterboxed else None
    height, width = explanation.input_tensor.shape[-2:]
    return {
        **classes_piece(explanation, key, classes, method, size),
        "size": list(size),
        "input": [int(width), int(height)],
        "box": list(box) if box is not None else None,
        "original": data_url(display_original(explanation, size)),
        "stages": explanation.stage_labels,
        "predictions": prediction_rows(explanation),
        "labels": {str(p.index): p.label for p in explanation.predictions},
    }


def method_classes(explanation: Explanation, method: str, selected: int) -> list[int]:
    """The classes a method's maps travel for at once: the whole top-k, except for the perturbation
    methods, whose maps cost batches of passes each: only the class on screen."""
    if method in PERTURBATION_METHODS:
        return [selected]
    return explanation.top_classes
