"""What the Explore tab says in words about an explanation: the status line, the predictions
under their heading, and the banner over untrained weights. /explain returns the same status
line and predictions."""

from __future__ import annotations

from types import ModuleType

import gradio as gr

from core import Explanation
from core.shelf import ModelShelf
from demo import texts
from demo.common import PRECISION_TEXTS


def status_line(explanation: Explanation, model_name: str, seconds: float | None = None, words: ModuleType = texts) -> str:
    """The model, its weights, the input size, the precision that made the maps and, given ``seconds``, the time taken."""
    info = explanation.info
    height, width = explanation.input_tensor.shape[-2:]
    timing = words.STATUS_TIMING.format(ms=f"{seconds * 1000:.0f}") if seconds is not None else ""
    untrained = "" if info.trained else words.STATUS_UNTRAINED
    rule = "" if explanation.has_relu else f"\n\n{words.NO_RELU}"
    name = PRECISION_TEXTS.get(explanation.precision)
    precision = getattr(words, name) if name else explanation.precision
    return words.STATUS.format(model=model_name, weights=info.weights, untrained=untrained, width=width, height=height, precision=precision, timing=timing) + rule


def confidences(explanation: Explanation) -> dict[str, float]:
    """The top-k, label → probability, as gr.Label takes it."""
    return {p.label: p.probability for p in explanation.predictions}


def predictions(explanation: Explanation, words: ModuleType = texts) -> dict:
    """The top-k under a heading that says whether the weights were trained."""
    heading = words.PREDICTIONS_LABEL if explanation.info.trained else words.PREDICTIONS_UNTRAINED
    return gr.update(value=confidences(explanation), label=heading)


def banner(shelf: ModelShelf, model_name: str, words: ModuleType = texts) -> dict:
    """The warning over the page while the model runs on untrained weights (and why), hidden otherwise."""
    reason = shelf.fallback_reason(model_name)
    if reason is None and shelf.weights != "random":
        return gr.update(visible=False, value="")
    reason = reason or words.WEIGHTS_RANDOM
    return gr.update(visible=True, value=words.UNTRAINED_BANNER.format(model=model_name, reason=reason))
