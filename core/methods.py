"""CAM methods: how one stage's activations A (C, h, w) become a class's raw (h, w) map.

Three kinds, all ending in a map at the stage's resolution, before upsampling and normalisation
(y_c is the pre-softmax class score, g = ∂y_c/∂A):

* gradient methods (``GRADIENT_METHODS``): functions of A and g, which an Explanation already
  holds, so choosing one never runs the network. Their counterfactual is the same function of −g.
* Eigen-CAM: a function of A alone, the same for every class.
* perturbation methods (Score-CAM, Ablation-CAM): channel weights from the class score of
  perturbed copies. The network passes come in as a callable, run in batches of
  :data:`core.forward.BATCH_SIZE`, over at most ``channels`` channels chosen without gradients.

Every stage output of a ResNet follows a ReLU, so A ≥ 0 throughout; the formulas rely on it where
they say so.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from core.forward import BATCH_SIZE

CamMethod = Callable[[Tensor, Tensor], Tensor]
Scores = Callable[[Tensor], Tensor]  # a batch (n, ...) → the class score y_c of each copy, (n,)

# Channel caps of the perturbation methods, each keeping resnet50 at 224×224 under ~1.5 s on 2 CPU
# threads (measured, any stage). Score-CAM costs one full forward per channel: 16 ≈ 1.2 s.
# Ablation-CAM costs the stages after the ablated one: 32 copies ≈ 1.4 s from layer1, 0.8 s from
# layer2, 0.3 s from layer3; layer4 has a closed form and no cap.
SCORECAM_CHANNELS = 16
ABLATION_CHANNELS = 32


def _weighted_sum(weights: Tensor, activations: Tensor) -> Tensor:
    """ReLU(Σ_k w_k A_k): the map of every channel-weighting method."""
    return torch.relu(torch.einsum("k,khw->hw", weights.to(activations.dtype), activations))


# ----- gradient methods ------------------------------------------------------------------


def gradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017).

    α_k = (1/hw) Σ_ij ∂y_c/∂A_k[i,j],   map = ReLU(Σ_k α_k A_k)
    """
    return _weighted_sum(gradients.mean(dim=(1, 2)), activations)


def gradcam_plus_plus(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM++ (Chattopadhay et al., WACV 2018), eq. 19 (the exponential score's closed form).

    α_k[i,j] = g² / (2 g² + S_k g³)  with g = ∂y_c/∂A_k[i,j] and S_k = Σ_ab A_k[a,b]
    w_k = Σ_ij α_k[i,j] · ReLU(g),   map = ReLU(Σ_k w_k A_k)

    Where g > 0 the g² cancels: α · ReLU(g) = g / (2 + S_k g), whose denominator is positive
    because S_k ≥ 0; where g ≤ 0 the term is 0. So no ε is needed.

    Definitional difference: pytorch-grad-cam adds ε = 1e-6 to the denominator. ResNet gradients
    are small (median g² ≈ 1e-7 at layer3-4 of resnet18/50), so that ε is not negligible: it
    moved pgc's maps by up to 12% of their peak in the tests. Ours follows the paper and the
    authors' code (which guards only a zero denominator); it equals pgc wherever g² ≫ ε.
    """
    sums = activations.sum(dim=(1, 2), keepdim=True)
    positive = gradients.clamp(min=0)
    return _weighted_sum((positive / (2 + sums * positive)).sum(dim=(1, 2)), activations)


def xgradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """XGrad-CAM (Fu et al., BMVC 2020): the gradient average weighted by the activation itself.

    w_k = Σ_ij (A_k[i,j] / Σ_ab A_k[a,b]) · ∂y_c/∂A_k[i,j],   map = ReLU(Σ_k w_k A_k)

    With the same gradient at every position (layer4 under global average pooling and a linear
    head) w_k = g_k, so XGrad-CAM equals Grad-CAM there.

    A dead channel (Σ A_k = 0, so A_k = 0) gets weight 0; pytorch-grad-cam's ε = 1e-7 on the sum
    does the same and is otherwise negligible next to sums of whole activation maps.
    """
    sums = activations.sum(dim=(1, 2))
    weighted = (gradients * activations).sum(dim=(1, 2))
    return _weighted_sum(weighted / sums.where(sums > 0, 1), activations)


def layercam(activations: Tensor, gradients: Tensor) -> Tensor:
    """LayerCAM (Jiang et al., IEEE TIP 2021): a per-position weight instead of a per-channel one.

    map[i,j] = ReLU(Σ_k ReLU(∂y_c/∂A_k[i,j]) · A_k[i,j])

    Positive gradients only, so shallow stages (where gradients change sign from pixel to pixel)
    still give sharp maps.
    """
    return torch.relu((gradients.clamp(min=0) * activations).sum(dim=0))


def hirescam(activations: Tensor, gradients: Tensor) -> Tensor:
    """HiResCAM (Draelos & Carin, 2020, arXiv:2011.08891): the gradient at each position, not its mean.

    map[i,j] = ReLU(Σ_k ∂y_c/∂A_k[i,j] · A_k[i,j])

    The ReLU is Grad-CAM's (and pytorch-grad-cam's). At layer4 under global average pooling and a
    linear head the gradient is the same at every position, so HiResCAM equals Grad-CAM there.
    """
    return torch.relu((gradients * activations).sum(dim=0))


GRADIENT_METHODS: dict[str, CamMethod] = {
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "xgradcam": xgradcam,
    "layercam": layercam,
    "hirescam": hirescam,
}


# ----- Eigen-CAM -------------------------------------------------------------------------


def eigencam(activations: Tensor) -> Tensor:
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the activations' first principal component.

    X = A as an (hw, C) matrix with each channel's mean removed,  X = U Σ Vᵀ,
    map = ReLU(X v₁) as (h, w), v₁ the first right singular vector.

    Class-agnostic: no gradient and no score. Centring and the ReLU follow pytorch-grad-cam.

    Definitional difference: v₁ is defined only up to sign, and pytorch-grad-cam keeps whichever
    sign LAPACK returns, so its map can come out as the complement of the salient region. Ours
    fixes the sign so that X v₁ correlates positively with the mean activation over channels
    (a zero correlation keeps LAPACK's sign).
    """
    channels, height, width = activations.shape
    matrix = activations.double().reshape(channels, -1).T
    centred = matrix - matrix.mean(dim=0)
    # X v₁ from the smaller Gram matrix, several times faster than an SVD: with XXᵀ u₁ = σ₁² u₁,
    # X v₁ = σ₁ u₁; with XᵀX v₁ = σ₁² v₁, directly.
    if centred.shape[0] <= channels:
        values, vectors = torch.linalg.eigh(centred @ centred.T)
        projection = vectors[:, -1] * values[-1].clamp(min=0).sqrt()
    else:
        projection = centred @ torch.linalg.eigh(centred.T @ centred).eigenvectors[:, -1]
    # The projection has zero mean, so its correlation with the mean activation has the sign of this dot product.
    if projection @ matrix.mean(dim=1) < 0:
        projection = -projection
    return torch.relu(projection).reshape(height, width).to(activations.dtype)


# ----- perturbation methods --------------------------------------------------------------


def _top_channels(criterion: Tensor, channels: int) -> Tensor:
    return torch.topk(criterion, min(channels, criterion.numel())).indices


def _input_masks(activations: Tensor, size: tuple[int, int]) -> Tensor:
    """(n, h, w) → (n, H, W): each channel upsampled (corners aligned, as pytorch-grad-cam) and min-max scaled; flat → 0."""
    upsampled = F.interpolate(activations[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
    low = upsampled.amin(dim=(1, 2), keepdim=True)
    spread = upsampled.amax(dim=(1, 2), keepdim=True) - low
    return (upsampled - low) / spread.where(spread > 0, 1)


def scorecam(activations: Tensor, input_tensor: Tensor, scores: Scores, channels: int = SCORECAM_CHANNELS) -> Tensor:
    """Score-CAM (Wang et al., CVPR Workshops 2020): weights from the score of the input masked by each channel.

    H_k = min-max(Up(A_k)) at the input's resolution,   s_k = y_c(X ∘ H_k),
    w = softmax_k(s),   map = ReLU(Σ_k w_k A_k)

    The paper's "increase of confidence" subtracts a baseline score y_c(X_b) from every s_k: a
    constant shift, which the softmax cancels. Scores are logits, as in pytorch-grad-cam.

    Cost cap: only the ``channels`` channels of largest spatial variance are scored (the
    selection of Faster Score-CAM): a flat channel gives an empty mask, and variance is
    gradient-free. The softmax runs over those; the rest weigh 0. ``channels`` ≥ C is the
    exact method. Cost: ⌈min(channels, C) / BATCH_SIZE⌉ batched forward passes.
    """
    chosen = _top_channels(activations.var(dim=(1, 2)), channels)
    size = tuple(input_tensor.shape[-2:])
    masked_scores = torch.cat(
        [scores(input_tensor * _input_masks(activations[part], size)[:, None]) for part in chosen.split(BATCH_SIZE)]
    )
    weights = torch.zeros(activations.shape[0], dtype=torch.float64)
    weights[chosen] = torch.softmax(masked_scores.double(), dim=0)
    return _weighted_sum(weights, activations)


def _without_channel(activations: Tensor, channels: Tensor) -> Tensor:
    """(len(channels), C, h, w): one copy of A per channel listed, with that channel set to zero."""
    copies = activations.repeat(len(channels), 1, 1, 1)
    copies[torch.arange(len(channels)), channels] = 0
    return copies


def ablation_drops(activations: Tensor, score: float, scores_from_stage: Scores, channels: int = ABLATION_CHANNELS) -> Tensor:
    """y_c − y_c^(k) per channel k, y_c^(k) being the score with A_k set to zero, (C,).

    ``scores_from_stage`` maps a batch of stage outputs to y_c. Cost cap: only the ``channels``
    channels of largest mean activation are ablated: the mean is gradient-free, and a channel
    with a small mean contributes little to Σ_k w_k A_k whatever its weight. The others get a
    zero drop (as pytorch-grad-cam does for channels it skips). Cost: ⌈min(channels, C) /
    BATCH_SIZE⌉ batched passes through the rest of the network.
    """
    chosen = _top_channels(activations.mean(dim=(1, 2)), channels)
    ablated = torch.cat([scores_from_stage(_without_channel(activations, part)) for part in chosen.split(BATCH_SIZE)])
    drops = torch.zeros(activations.shape[0], dtype=torch.float64)
    drops[chosen] = score - ablated.double()
    return drops


def linear_head_drops(activations: Tensor, class_weights: Tensor) -> Tensor:
    """Ablation drops at the last stage in closed form, for a global-average-pool + linear head.

    y_c = b_c + Σ_k W_ck · mean(A_k), so zeroing A_k lowers y_c by exactly W_ck · mean(A_k):
    every channel, no pass, no cap.
    """
    return class_weights.double() * activations.double().mean(dim=(1, 2))


def ablationcam(activations: Tensor, drops: Tensor, score: float) -> Tensor:
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020): weights from the score lost without each channel.

    w_k = (y_c − y_c^(k)) / |y_c|,   map = ReLU(Σ_k w_k A_k)

    Definitional difference: the paper and pytorch-grad-cam divide by y_c, which flips every
    weight, and so the map, for a class whose score is negative. Ours divides by |y_c| (by 1 when
    y_c = 0): the same map for positive scores, and still the channels whose loss lowers the score
    for negative ones.
    """
    return _weighted_sum(drops / (abs(score) or 1.0), activations)


# ----- the registry ----------------------------------------------------------------------

PERTURBATION_METHODS = ("scorecam", "ablationcam")

# Display order: the free gradient methods, then those that run the network, then the class-agnostic one.
METHODS: tuple[str, ...] = (*GRADIENT_METHODS, *PERTURBATION_METHODS, "eigencam")

METHOD_INFO: dict[str, str] = {
    "gradcam": "Grad-CAM: channels weighted by their mean gradient (Selvaraju et al., ICCV 2017)",
    "gradcam++": "Grad-CAM++: positive gradients, weighted to favour several object instances (Chattopadhay et al., WACV 2018)",
    "xgradcam": "XGrad-CAM: gradients averaged with the activation as weight (Fu et al., BMVC 2020)",
    "layercam": "LayerCAM: positive gradient × activation at each position; sharp at early stages (Jiang et al., TIP 2021)",
    "hirescam": "HiResCAM: gradient × activation at each position, signed (Draelos & Carin, 2020)",
    "scorecam": f"Score-CAM: the score of the image masked by each channel; gradient-free, {SCORECAM_CHANNELS} forward passes (Wang et al., CVPR-W 2020)",
    "ablationcam": "Ablation-CAM: the score lost when each channel is zeroed; gradient-free (Desai & Ramaswamy, WACV 2020)",
    "eigencam": "Eigen-CAM: first principal component of the activations; the same for every class (Muhammad & Yeasin, IJCNN 2020)",
}
