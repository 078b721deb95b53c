"""Does the map pick out what the model uses? Scores computed by perturbing the input by the map.

* Deletion and insertion (Petsiuk et al., RISE, BMVC 2018). Pixels are ranked by the map, most
  salient first. Deletion replaces the top fraction f of pixels by a baseline and follows the
  class probability as f goes 0 → 1: a faithful map makes it fall fast (low area under the
  curve). Insertion starts from the baseline alone and pastes the top fraction of the image
  back: a faithful map makes it rise fast (high area). Both curves have ``steps`` + 1 points,
  at f = i / steps (to the nearest pixel); the area is the trapezoid rule over f, in [0, 1].
* Average drop and increase in confidence (Chattopadhay et al., Grad-CAM++, WACV 2018): with Y
  the class probability of the image and O that of the image multiplied by the [0, 1] map,
  drop = max(0, Y − O) / Y and increase = O > Y. Both are per-image terms of dataset averages.

Choices:

* The map is the method's raw map upsampled (bilinear) to the model-input resolution and min-max
  scaled to [0, 1]; pixels are ranked there. Ties (flat regions, an all-zero map) are broken in a
  fixed pseudo-random order, so a flat map deletes pixels at random rather than by raster scan.
* Everything happens to the normalised model input. The baseline of both curves is 0 there,
  i.e. the dataset's mean colour; the image multiplied by the map likewise fades to it.
  RISE inserts into a blurred copy instead, but a blur keeps every region's colour: on the test
  suite's model, which tells a red disc from a blue square, the blurred image alone scored
  p ≈ 0.999 (σ = 5 px; still 0.94 at σ = 40 px), so every map's insertion area was ≈ 1. With one
  baseline, insertion is the least-relevant-first deletion (Samek et al., IEEE TNNLS 2017) read
  backwards: up to ties, the insertion area of a map is the deletion area of 1 − map.
* Probability = softmax of the logits, in float64.

Cost: 2·steps + 1 images (the image, steps deletions, the steps − 1 insertions strictly between
the baseline and the image, the masked image), run without a graph in
⌈(2·steps + 1) / BATCH_SIZE⌉ batches: 3 for the default 16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from core.forward import BATCH_SIZE

STEPS = 16
MAX_STEPS = 64  # bounds the cost: 129 images
_TIE_SEED = 0

Probabilities = Callable[[Tensor], Tensor]  # a batch of model inputs (n, 3, H, W) → p_c of each, (n,)


@dataclass(frozen=True)
class Faithfulness:
    """Deletion/insertion curves and their areas, and the confidence drop, for one map."""

    fractions: tuple[float, ...]  # share of pixels deleted or inserted at each step, 0 … 1
    deletion: tuple[float, ...]  # p_c as the most salient pixels turn to the mean colour
    insertion: tuple[float, ...]  # p_c as the most salient pixels return onto the mean colour
    deletion_auc: float  # lower is better
    insertion_auc: float  # higher is better
    probability: float  # Y: p_c of the image
    masked_probability: float  # O: p_c of the image multiplied by the map
    average_drop: float  # max(0, Y − O) / Y: this image's term of the average drop
    increase: bool  # O > Y: this image's term of the increase in confidence


def evaluate(input_tensor: Tensor, saliency: Tensor, probabilities: Probabilities, steps: int = STEPS) -> Faithfulness:
    """Scores the (H, W) [0, 1] ``saliency`` map for the (1, 3, H, W) normalised ``input_tensor``."""
    if not (isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= MAX_STEPS):
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS}, not {steps!r}")
    if saliency.shape != input_tensor.shape[-2:]:
        raise ValueError(f"the map is {tuple(saliency.shape)} but the input is {tuple(input_tensor.shape[-2:])}")
    rank = salience_rank(saliency)
    counts = [round(i * rank.numel() / steps) for i in range(steps + 1)]
    images = torch.cat(
        [
            input_tensor,
            *(torch.where(rank < n, 0.0, input_tensor) for n in counts[1:]),
            *(torch.where(rank < n, input_tensor, 0.0) for n in counts[1:-1]),
            input_tensor * saliency,
        ]
    )
    p = torch.cat([probabilities(batch) for batch in images.split(BATCH_SIZE)]).double()
    original, masked = p[0], p[-1]
    # Deletion ends where insertion starts, on the baseline alone.
    deletion = torch.cat([original[None], p[1 : steps + 1]])
    insertion = torch.cat([p[steps : 2 * steps], original[None]])
    fractions = torch.tensor(counts, dtype=torch.float64) / rank.numel()
    return Faithfulness(
        fractions=tuple(fractions.tolist()),
        deletion=tuple(deletion.tolist()),
        insertion=tuple(insertion.tolist()),
        deletion_auc=float(torch.trapezoid(deletion, fractions)),
        insertion_auc=float(torch.trapezoid(insertion, fractions)),
        probability=float(original),
        masked_probability=float(masked),
        average_drop=float((original - masked).clamp(min=0) / original) if original > 0 else 0.0,
        increase=bool(masked > original),
    )


def salience_rank(saliency: Tensor) -> Tensor:
    """(H, W) rank of every pixel, 0 = most salient; ties in a fixed pseudo-random order."""
    flat = saliency.flatten()
    shuffle = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(_TIE_SEED))
    # A stable sort of the shuffled values keeps tied pixels in shuffled order.
    order = shuffle[torch.sort(flat[shuffle], descending=True, stable=True).indices]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(flat.numel())
    return rank.reshape(saliency.shape)

