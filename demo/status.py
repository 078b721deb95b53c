"""What the Explore tab says in words about an explanation: the status line, the predictions
under their heading, the class picker's choices, the banner over untrained weights, and the
layer slider's line about what each position is. /explain
returns the same status line and predictions."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gradio as gr

from core import MODELS, Explanation, describe_stages
from core.payload import prediction_rows
from core.service import about
from core.shelf import ModelShelf
from demo import texts
from demo.common import PRECISION_TEXTS


@dataclass(frozen=True)
class Summary:
    """What the words beside the maps need of an explanation, wherever it was computed: from an
    Explanation here, or from the first piece of payload that a cluster sent (core.service)."""

    weights: str
    trained: bool
    relu: bool
    precision: str
    input_size: tuple[int, int]  # (width, height) of the model input
    predictions: tuple[tuple[int, str, float], ...]  # (class index, label, probability), best first
    fallback_reason: str | None = None  # why the weights are untrained, when they fell back

    @classmethod
    def of(cls, explanation: Explanation) -> "Summary":
        height, width = explanation.input_tensor.shape[-2:]
        return cls.of_piece({"about": about(explanation), "input": [width, height], "predictions": prediction_rows(explanation)})

    @classmethod
    def of_piece(cls, piece: dict[str, Any]) -> "Summary":
        about_it = piece["about"]
        rows = tuple((int(p["index"]), str(p["label"]), float(p["probability"])) for p in piece["predictions"])
        width, height = piece["input"]
        return cls(about_it["weights"], about_it["trained"], about_it["relu"], about_it["precision"], (int(width), int(height)), rows, about_it.get("reason"))


def status_line(summary: Summary, model_name: str, seconds: float | None = None, words: ModuleType = texts) -> str:
    """The model, its weights, the input size, the precision that made the maps and, given ``seconds``, the time taken."""
    timing = words.STATUS_TIMING.format(ms=f"{seconds * 1000:.0f}") if seconds is not None else ""
    untrained = "" if summary.trained else words.STATUS_UNTRAINED
    rule = "" if summary.relu else f"\n\n{words.NO_RELU}"
    name = PRECISION_TEXTS.get(summary.precision)
    precision = getattr(words, name) if name else summary.precision
    width, height = summary.input_size
    return words.STATUS.format(model=model_name, weights=summary.weights, untrained=untrained, width=width, height=height, precision=precision, timing=timing) + rule


def confidences(summary: Summary) -> dict[str, float]:
    """The top-k, label → probability, as gr.Label takes it."""
    return {label: probability for _, label, probability in summary.predictions}


def predictions(summary: Summary, words: ModuleType = texts) -> dict:
    """The top-k under a heading that says whether the weights were trained."""
    heading = words.PREDICTIONS_LABEL if summary.trained else words.PREDICTIONS_UNTRAINED
    return gr.update(value=confidences(summary), label=heading)


def class_choices(summary: Summary) -> list[tuple[str, int]]:
    """The class picker's choices: each top-k class with its probability."""
    return [(f"{label} · {probability:.1%}", index) for index, label, probability in summary.predictions]


def banner(model_name: str, untrained: bool, reason: str | None, words: ModuleType = texts) -> dict:
    """The warning over the page while the model runs on untrained weights (and why), hidden otherwise."""
    if not untrained:
        return gr.update(visible=False, value="")
    return gr.update(visible=True, value=words.UNTRAINED_BANNER.format(model=model_name, reason=reason or words.WEIGHTS_RANDOM))


def shelf_banner(shelf: ModelShelf, model_name: str, words: ModuleType = texts) -> dict:
    """The banner before any explanation: from what the shelf knows of the model's weights."""
    reason = shelf.fallback_reason(model_name)
    return banner(model_name, reason is not None or shelf.weights == "random", reason, words)


def layer_positions(shelf: ModelShelf, model_name: str, words: ModuleType = texts) -> dict:
    """The layer slider's info line: the module and grid behind each position, for this model."""
    if model_name not in MODELS:
        return gr.update()
    with shelf.lease(model_name) as model:
        stages = describe_stages(model)
    positions = " · ".join(f"{n} = {label}" for n, label in enumerate(stages, start=1))
    return gr.update(info=words.LAYER_POSITIONS.format(positions=positions))
