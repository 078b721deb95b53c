"""The pictures one view of an Explanation shows, shared by the web page and the command line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.engine import Explanation
from core.forward import STAGES
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
        guided_gradcam=gradient_image(
            explanation.guided_gradcam(class_idx, layer, counterfactual=counterfactual, method=method)
        ),
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
