"""Model against model: one image and one class, explained by several networks side by side.

Every torchvision ImageNet classifier shares one label set, so a class is matched by its index.
A network with other labels (a student's checkpoint) cannot be matched that way and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from core.engine import Explanation, Prediction, stage_index
from core.forward import STAGES
from core.render import DEFAULT_COLORMAP, overlay


class LabelMismatchError(ValueError):
    """The explanations come from models with different label sets."""


def class_probability(explanation: Explanation, class_idx: int) -> float:
    """The model's softmax probability for any class, in the top-k or not."""
    if not 0 <= int(class_idx) < explanation.num_classes:
        raise ValueError(f"class must be an integer from 0 to {explanation.num_classes - 1}, not {class_idx!r}")
    return float(torch.softmax(explanation.logits.double(), dim=0)[int(class_idx)])


@dataclass(frozen=True)
class ModelView:
    """One model's map of the shared class, with what a student needs to read it."""

    model: str
    trained: bool
    stage: str  # the slider position and what it is in this model, e.g. "layer4 = features.7 · 7×7"
    probability: float  # this model's probability for the shared class
    top: Prediction  # this model's own best guess
    overlay: np.ndarray  # RGB uint8 at the image size


def slider_label(explanation: Explanation, index: int) -> str:
    """What a slider position is in this model: "layer4 · 7×7" for a ResNet, "layer4 = features.7 · 7×7" otherwise."""
    label = explanation.stage_labels[index]
    return label if explanation.stages[index] == STAGES[index] else f"{STAGES[index]} = {label}"


def check_same_labels(explanations: Sequence[Explanation]) -> None:
    """Raises LabelMismatchError unless every explanation's model has the first one's labels."""
    first = explanations[0].info
    for explanation in explanations[1:]:
        info = explanation.info
        if info.categories != first.categories:
            raise LabelMismatchError(
                f"{info.name} ({info.weights}) has its own {len(info.categories)} labels, so a class number means "
                f"something else to it than to {first.name} ({len(first.categories)} labels). Comparing models "
                "matches the class by its number, which needs one label set: compare ImageNet models only."
            )


def model_comparison(
    explanations: Sequence[Explanation],
    class_idx: int,
    layer: int | str = 4,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
) -> list[ModelView]:
    """Each explanation's Grad-CAM overlay for the same class at the same slider position."""
    if not explanations:
        raise ValueError("choose at least one model to compare")
    check_same_labels(explanations)
    index = stage_index(layer)
    views = []
    for explanation in explanations:
        views.append(
            ModelView(
                model=explanation.info.name,
                trained=explanation.info.trained,
                stage=slider_label(explanation, index),
                probability=class_probability(explanation, class_idx),
                top=explanation.predictions[0],
                overlay=overlay(explanation.image, explanation.cam(class_idx, index + 1), colormap, opacity),
            )
        )
    return views
