"""Hide and see: hide part of the image, explain the edited image afresh, and compare.

What a hidden pixel becomes (the fill):

* "mean": the model's normalisation mean colour, round(255·μ) per channel. The network sees
  (v/255 − μ)/σ, which is then zero up to the uint8 rounding: |Δ| ≤ 0.5/(255·σ) ≈ 0.009 for
  ImageNet's σ. It removes the region's colour and shape alike (the baseline of
  :mod:`core.faithfulness`, too).
* "blur": the same pixel of the whole image blurred by a Gaussian of σ = BLUR_SIGMA × the
  image's longer side: shapes go, colours stay, so a model that reads colour may not notice.
* "noise": uniform random colours from a generator seeded with ``seed``. The noise is drawn for
  the whole image, so a seed gives each pixel the same colour whatever the mask.

The edited image is explained as a new image (:func:`core.explain`): nothing is carried over from
the original's pass. Its map and the original's are shown on one colour scale. With P the peak
of the original's raw map at the image's size, before = map_before / P and after = map_after / P,
so a region that cooled reads darker after, and a map that moved elsewhere is not stretched to
look as strong. The after map is clipped at 1 for display; ``after_peak`` = max(map_after) / P
keeps how far it went above. Each map on its own scale, as the explorer shows them, would hide a
weakening map behind its own normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from core.engine import Explanation, Prediction, explain, stage_index
from core.faithfulness import salience_rank
from core.forward import STAGES
from core.intake import ImageSource
from core.render import as_rgb_array
from core.weights import IMAGENET_MEAN, model_info

FILLS = ("blur", "mean", "noise")
#: The automatic version's choices: hide the map's hottest 10%, 20% or 50% of pixels.
HOTTEST_FRACTIONS = (0.1, 0.2, 0.5)
BLUR_SIGMA = 0.05  # of the longer side: 11 px on a 224 px image, enough to dissolve a 56 px object


@dataclass(frozen=True)
class HideAndSee:
    """One class's probability and map before and after hiding part of the image."""

    class_idx: int
    label: str
    layer: str  # "layer1".."layer4"
    fill: str
    hidden: float  # share of the image's pixels hidden, 0 … 1
    probability_before: float  # p_c = softmax(logits)_c of the original
    probability_after: float  # p_c of the edited image
    drop: float  # probability_before − probability_after: positive when hiding lowered the class
    edited: np.ndarray  # (H, W, 3) uint8: the image the second explanation saw
    cam_before: np.ndarray  # (H, W) map_before / P in [0, 1], P its peak (Grad-CAM)
    cam_after: np.ndarray  # (H, W) map_after / P, clipped to [0, 1]: the same colour scale
    after_peak: float  # max(map_after) / P, unclipped: above 1 when the edited image's map is hotter
    top_after: tuple[Prediction, ...]  # the edited image's top 5


def boxes_mask(size: tuple[int, int], boxes: Iterable[Sequence[float]]) -> np.ndarray:
    """A (height, width) boolean mask, True inside any of the boxes.

    ``size`` is the image's (width, height). Each box is (left, top, right, bottom) in image
    pixels, right and bottom exclusive (as :class:`core.localise.Box`); coordinates are rounded,
    and a box reaching past the image is cut at its edge.
    """
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        if len(box) != 4:
            raise ValueError(f"a box is four numbers (left, top, right, bottom), not {box!r}")
        left, top, right, bottom = (int(round(float(v))) for v in box)
        if right <= left or bottom <= top:
            raise ValueError(f"a box needs right > left and bottom > top; got {tuple(box)}")
        mask[max(0, top) : max(0, bottom), max(0, left) : max(0, right)] = True
    return mask


def hottest_mask(cam01: np.ndarray, fraction: float) -> np.ndarray:
    """The (H, W) mask of the map's hottest ``fraction`` of pixels: exactly round(fraction · H · W).

    Pixels are ranked as the deletion curve ranks them (:func:`core.faithfulness.salience_rank`),
    so ties, such as an all-zero map's, fall in a fixed pseudo-random order.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction <= 1:
        raise ValueError(f"the share of pixels to hide must be above 0 and at most 1 (e.g. 0.2 for 20%); got {fraction!r}")
    cam = np.asarray(cam01, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"the map must be a 2-D (height, width) array, not of shape {cam.shape}")
    rank = salience_rank(torch.from_numpy(cam)).numpy()
    return rank < round(fraction * cam.size)


def hide(
    image: Image.Image | np.ndarray,
    mask: np.ndarray,
    fill: str = "mean",
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    seed: int = 0,
) -> np.ndarray:
    """A copy of the RGB uint8 image with the mask's pixels replaced by the fill (see the module's
    docstring); pixels outside the mask keep their values exactly. ``mean`` is the model's
    normalisation mean, in [0, 1] per channel (``model_info(model).mean``)."""
    _check_fill(fill)
    rgb = as_rgb_array(image)
    mask = _check_mask(mask, rgb.shape[:2])
    if fill == "mean":
        replacement = np.rint(np.asarray(mean, dtype=np.float64) * 255).clip(0, 255).astype(np.uint8)
    elif fill == "blur":
        sigma = BLUR_SIGMA * max(rgb.shape[:2])
        replacement = cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)[mask]
    else:
        replacement = np.random.default_rng(seed).integers(0, 256, size=rgb.shape, dtype=np.uint8)[mask]
    edited = rgb.copy()
    edited[mask] = replacement
    return edited


def hide_and_see(
    model: nn.Module,
    image: ImageSource | Explanation,
    mask: np.ndarray,
    fill: str = "mean",
    class_idx: int | None = None,
    layer: int | str = 4,
    precision: str = "float32",
    *,
    seed: int = 0,
) -> HideAndSee:
    """Hides the mask's pixels with the fill, explains the edited image, and compares (Grad-CAM).

    ``image`` is anything :func:`core.read_image` takes, or the Explanation of ``model`` on it at
    this precision (the page caches one), whose pass is then reused; ``mask`` is a boolean
    (height, width) array at that image's size (:func:`boxes_mask`, :func:`hottest_mask`).
    ``class_idx`` defaults to the original's top class. Costs one explanation of the edited
    image, plus one of the original unless it is given.
    """
    _check_fill(fill)
    if isinstance(image, Explanation):
        if image.precision != precision:
            raise ValueError(f"the given explanation ran in {image.precision}, not {precision}: pass the image instead")
        before = image
    else:
        before = explain(model, image, lazy=True, precision=precision)
    mask = _check_mask(mask, before.image.size[::-1])
    stage = STAGES[stage_index(layer)]
    if class_idx is None:
        class_idx = before.top_classes[0]
    map_before = _unscaled_map(before, class_idx, stage)  # first: a bad class fails before a pass
    edited = hide(before.image, mask, fill, mean=model_info(model).mean, seed=seed)
    after = explain(model, edited, lazy=True, precision=precision)
    map_after = _unscaled_map(after, class_idx, stage)
    peak = float(map_before.max())
    scale = peak if peak > 0 else 1.0  # an all-zero original map leaves the after map as it is
    probability_before, probability_after = (_probability(e, class_idx) for e in (before, after))
    return HideAndSee(
        class_idx=int(class_idx),
        label=before.info.categories[class_idx],
        layer=stage,
        fill=fill,
        hidden=float(mask.mean()),
        probability_before=probability_before,
        probability_after=probability_after,
        drop=probability_before - probability_after,
        edited=edited,
        cam_before=np.clip(map_before / scale, 0.0, 1.0),
        cam_after=np.clip(map_after / scale, 0.0, 1.0),
        after_peak=float(map_after.max()) / scale,
        top_after=tuple(after.predictions[:5]),
    )


def _check_fill(fill: str) -> None:
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose from {', '.join(FILLS)}")


def _check_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ValueError(f"the mask must be a boolean array (True = hide), not {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"the mask is {mask.shape[::-1]} (width, height) but the image is {tuple(shape)[::-1]}: draw it at the image's size")
    return mask


def _unscaled_map(explanation: Explanation, class_idx: int, stage: str) -> np.ndarray:
    """The raw Grad-CAM at the image's size, before any normalisation: (H, W) float32, ≥ 0.

    The engine's own upsampling (letterbox crop included), the same as the explorer's.
    """
    return explanation.cam(class_idx, stage, scaled=False)


def _probability(explanation: Explanation, class_idx: int) -> float:
    return float(torch.softmax(explanation.logits.double(), dim=0)[class_idx])
