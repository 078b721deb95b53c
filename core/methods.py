"""CAM weightings: small functions of one stage's activations A and the class gradients ∂y_c/∂A.

Each takes tensors of shape (C, h, w) and returns the raw (h, w) map at the stage's resolution,
before upsampling and normalisation. They run on what an Explanation already holds, so choosing
another method never runs the network.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

CamMethod = Callable[[Tensor, Tensor], Tensor]


def gradcam(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017).

    α_k = (1/hw) Σ_ij ∂y_c/∂A_k[i,j],   map = ReLU(Σ_k α_k A_k)
    """
    alpha = gradients.mean(dim=(1, 2))
    return torch.relu(torch.einsum("k,khw->hw", alpha, activations))


METHODS: dict[str, CamMethod] = {
    "gradcam": gradcam,
}
