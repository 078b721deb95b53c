"""The pictures one view of an Explanation shows, shared by the web page and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from core.engine import Explanation
from core.faithfulness import Faithfulness
from core.forward import STAGES
from core.methods import METHODS
from core.render import DEFAULT_COLORMAP, as_rgb_array, gradient_image, heatmap, overlay, strip

PANEL_TITLES = ("Original", "Grad-CAM heatmap", "Overlay", "Guided backprop", "Guided Grad-CAM")


@dataclass(frozen=True)
class Panels:
    """RGB uint8 pictures at the explained image's size, in PANEL_TITLES order."""

    original: np.ndarray
    heatmap: np.ndarray
    overlay: np.ndarray
    guided_backprop: np.ndarray
    guided_gradcam: np.ndarray

    def as_list(self) -> list[np.ndarray]:
        return [self.original, self.heatmap, self.overlay, self.guided_backprop, self.guided_gradcam]

    def strip(self, caption: str = "") -> Image.Image:
        titles = [f"{title}{caption}" if i else title for i, title in enumerate(PANEL_TITLES)]
        return strip(list(zip(titles, self.as_list())))


def panels(
    explanation: Explanation,
    class_idx: int,
    layer: int | str = 4,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    counterfactual: bool = False,
    method: str = "gradcam",
) -> Panels:
    cam01 = explanation.cam(class_idx, layer, counterfactual=counterfactual, method=method)
    guided = explanation.guided_backprop(class_idx)
    return Panels(
        original=as_rgb_array(explanation.image),
        heatmap=heatmap(cam01, colormap),
        overlay=overlay(explanation.image, cam01, colormap, opacity),
        guided_backprop=gradient_image(guided),
        # Explanation.guided_gradcam's product, from the map and gradient already in hand:
        # calling it would upsample both again on every switch.
        guided_gradcam=gradient_image(guided * cam01[..., None]),
    )


def layer_overlays(
    explanation: Explanation,
    class_idx: int,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    counterfactual: bool = False,
    method: str = "gradcam",
) -> list[tuple[str, np.ndarray]]:
    """The overlay at layer1..layer4: how the map sharpens or spreads with depth, at one glance."""
    return [
        (stage, overlay(explanation.image, explanation.cam(class_idx, stage, counterfactual=counterfactual, method=method), colormap, opacity))
        for stage in STAGES
    ]


@dataclass(frozen=True)
class MethodView:
    """One CAM method's overlay and faithfulness scores, for the side-by-side comparison."""

    method: str
    overlay: np.ndarray
    faithfulness: Faithfulness


def method_comparison(
    explanation: Explanation,
    class_idx: int,
    layer: int | str = 4,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    methods: Sequence[str] = METHODS,
    on_method: Callable[[str], None] | None = None,
) -> list[MethodView]:
    """Every method's overlay for one class and stage, each scored by deletion/insertion.

    ``on_method`` is told which method starts next, for a progress bar: the perturbation
    methods and the scores run the network.
    """
    views = []
    for method in methods:
        if on_method is not None:
            on_method(method)
        cam01 = explanation.cam(class_idx, layer, method=method)
        views.append(
            MethodView(method, overlay(explanation.image, cam01, colormap, opacity), explanation.faithfulness(class_idx, layer, method))
        )
    return views
