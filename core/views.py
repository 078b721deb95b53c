"""The pictures one view of an Explanation shows, shared by the web page and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import cv2
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


class CamPictures(NamedTuple):
    """The first three panels, and the [0, 1] map they were drawn from (the guided ones need it)."""

    original: np.ndarray
    heatmap: np.ndarray
    overlay: np.ndarray
    cam01: np.ndarray


def display_size(explanation: Explanation, max_side: int | None) -> tuple[int, int]:
    """(width, height) of the pictures: the image's size, or smaller to fit max_side."""
    width, height = explanation.size
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A map, gradient or picture at (width, height); area averaging when it shrinks."""
    if array.shape[1::-1] == size:
        return array
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)


def display_original(explanation: Explanation, size: tuple[int, int]) -> np.ndarray:
    """The explained picture at (width, height), as every panel at that size shows it."""
    return _fit(as_rgb_array(explanation.image), size)


def display_guided(explanation: Explanation, class_idx: int, size: tuple[int, int]) -> np.ndarray:
    """The class's guided backprop, float32 (height, width, 3), at (width, height)."""
    return _fit(explanation.guided_backprop(class_idx), size)


def cam_pictures(
    explanation: Explanation,
    class_idx: int,
    layer: int | str = 4,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    counterfactual: bool = False,
    method: str = "gradcam",
    max_side: int | None = None,
) -> CamPictures:
    """Original, heatmap and overlay: what a first view can show before guided backprop is drawn.

    ``max_side`` draws them at display size (the page shows panels ~260 px high): every per-pixel
    step and the encoding after it then touches a fraction of the pixels.
    """
    size = display_size(explanation, max_side)
    cam01 = explanation.cam(class_idx, layer, counterfactual=counterfactual, method=method, size=size)
    original = display_original(explanation, size)
    return CamPictures(original, heatmap(cam01, colormap), overlay(original, cam01, colormap, opacity), cam01)


def guided_pictures(explanation: Explanation, class_idx: int, cam01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Guided backprop and Guided Grad-CAM, at the size of ``cam01`` (from :func:`cam_pictures`)."""
    guided = display_guided(explanation, class_idx, cam01.shape[1::-1])
    # Explanation.guided_gradcam's product, from the map and gradient already in hand:
    # calling it would upsample both again on every switch.
    return gradient_image(guided), gradient_image(guided * cam01[..., None])


def panels(
    explanation: Explanation,
    class_idx: int,
    layer: int | str = 4,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    counterfactual: bool = False,
    method: str = "gradcam",
    max_side: int | None = None,
) -> Panels:
    first = cam_pictures(
        explanation, class_idx, layer, colormap=colormap, opacity=opacity, counterfactual=counterfactual, method=method, max_side=max_side
    )
    return Panels(first.original, first.heatmap, first.overlay, *guided_pictures(explanation, class_idx, first.cam01))


def layer_overlays(
    explanation: Explanation,
    class_idx: int,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    counterfactual: bool = False,
    method: str = "gradcam",
    max_side: int | None = None,
) -> list[tuple[str, np.ndarray]]:
    """The overlay at layer1..layer4, each captioned with the module and grid behind it
    (e.g. "layer3 · features.5 · 14×14"): how the map sharpens or spreads with depth, at one glance."""
    size = display_size(explanation, max_side)
    original = display_original(explanation, size)
    return [
        (f"{stage} · {label}", overlay(original, explanation.cam(class_idx, stage, counterfactual=counterfactual, method=method, size=size), colormap, opacity))
        for stage, label in zip(STAGES, explanation.stage_labels)
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
