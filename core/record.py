"""What one explanation holds before any map is drawn: the ``Record`` that ``Explanation`` extends.

A record is one picture through one model: the picture and the model input it became, the
predictions, and what the passes through the model's twin stored (the four stage outputs, the
logits and the per-class gradients, kept by :class:`core.passes.GradientStore`), with which class
is there yet. It also holds the geometry that brings a map over the model input back over the
picture: a letterboxed input (ViT, MaxViT) is cropped back to the picture's box first.

The maps themselves (Grad-CAM and the other methods, guided backprop, faithfulness) are
:class:`core.engine.Explanation`'s, computed from what is stored here.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Self

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from core.forward import STAGES, Twin, twin_for
from core.intake import letterbox_box
from core.passes import ClassGradients, GradientStore, Pause, no_pause
from core.resample import resize
from core.weights import ModelInfo


class Prediction(NamedTuple):
    index: int
    label: str
    probability: float


def stage_index(layer: int | str) -> int:
    """0..3 for layer 1..4 or "layer1".."layer4"."""
    if isinstance(layer, str) and layer in STAGES:
        return STAGES.index(layer)
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool) and 1 <= layer <= 4:
        return int(layer) - 1
    raise ValueError(f"layer must be 1-4 or one of {', '.join(STAGES)}, not {layer!r}")


class Record:
    """One (image, model) pair: the picture, its model input, the predictions and the stored passes.

    Thread-safe: concurrent calls compute any missing class once (see :class:`core.passes.GradientStore`).
    """

    def __init__(
        self, model: nn.Module, image: Image.Image, input_tensor: Tensor, info: ModelInfo, twin: Twin, precision: str = "float32"
    ) -> None:
        self._model = model
        self._twin = twin
        self.image = image
        self.info = info
        self.input_tensor = input_tensor
        self.precision = precision
        self._gradients = GradientStore(twin, input_tensor, precision)
        self.predictions: list[Prediction] = []

    def hold_network(self, model: nn.Module | None) -> None:
        """Holds ``model`` and its twin for the passes to come or, given None, lets go of both.

        Let go of, the record keeps its stored tensors and its twin's outline, enough to draw
        every class it has stored, and pins no parameter but the head's weight; a pass then fails
        until a model is held again. The page's shelf decides when (see core.shelf).
        """
        if model is None:
            self._model, self._twin = None, self._twin.outline()
        else:
            self._model, self._twin = model, twin_for(model, self.info.input_size, fold=self.precision == "bfloat16")
        self._gradients.twin = self._twin  # the passes run through the store's twin

    # ----- what the first pass stored ---------------------------------------------------------

    @property
    def stage_activations(self) -> list[Tensor]:
        """The four stage outputs of the first pass, (C, h, w) each, on the CPU."""
        return self._gradients.stage_activations

    @property
    def logits(self) -> Tensor:
        return self._gradients.logits

    @property
    def num_classes(self) -> int:
        return int(self.logits.shape[-1])

    @property
    def top_classes(self) -> list[int]:
        return [p.index for p in self.predictions]

    @property
    def stages(self) -> tuple[str, ...]:
        """The module path behind layer1..layer4, e.g. ("features.1", …, "features.7")."""
        return self._twin.stages

    @property
    def stage_labels(self) -> list[str]:
        """Each stage's module path and grid, e.g. "features.5 · 14×14", for captions and the slider."""
        return [f"{path} · {a.shape[-2]}×{a.shape[-1]}" for path, a in zip(self.stages, self.stage_activations)]

    @property
    def has_relu(self) -> bool:
        """False for GELU, SiLU or Hardswish networks, where guided backprop uses our extended rule."""
        return self._twin.relus > 0

    # ----- the picture inside the model input ---------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the original image: the size every returned map has."""
        return self.image.size

    @property
    def letterboxed(self) -> bool:
        """Whether the model saw the picture letterboxed into its one square input size (ViT, MaxViT)."""
        return self._twin.fixed_input is not None

    @property
    def content_box(self) -> tuple[int, int, int, int]:
        """(left, top, width, height) of the image inside the model input: all of it unless letterboxed."""
        height, width = self.input_tensor.shape[-2:]
        if self._twin.fixed_input is None:
            return 0, 0, width, height
        return letterbox_box(*self.image.size, self._twin.fixed_input)

    def _to_picture(self, maps: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """(n, h, w) maps over the model input → (n, H, W) over the picture, bilinear, at ``size``
        (width, height; the original's by default: a smaller one is the page's display size)."""
        height, width = self.input_tensor.shape[-2:]
        box = self.content_box if self.letterboxed else None
        return over_picture(maps, size or self.size, (width, height), box)

    # ----- the network passes (see core.passes) -------------------------------------------------

    def _first_pass(self, top_k: int, *, lazy: bool, top_class_stages: bool = False, top_class_guided: bool = True) -> None:
        def select() -> tuple[list[int], list[int]]:
            probabilities = torch.softmax(self.logits.double(), dim=0)
            top = torch.topk(probabilities, min(top_k, self.num_classes))
            labels = self.info.categories
            self.predictions = [
                Prediction(int(i), labels[int(i)], float(p)) for p, i in zip(top.values, top.indices)
            ]
            if not lazy:
                return self.top_classes, self.top_classes
            return (self.top_classes[:1] if stages else []), (self.top_classes[:1] if top_class_guided else [])

        # A lazy first view shows the top class's map at layer4 (its closed form needs no backward
        # pass) or, with top_class_stages or without a closed form, at every stage, and its guided
        # map unless told otherwise: then, at layer4 with a closed form, the pass is the forward alone.
        stages = top_class_stages or self._twin.fc_weight is None
        self._gradients.first_pass(select, graph=not lazy or stages or top_class_guided)

    def stored(self, class_idx: int, *, stages: bool = False, guided: bool = False) -> bool:
        """Whether the class's stage (and/or guided) gradients are there, without running or waiting for a pass."""
        return self._gradients.stored(class_idx, stages=stages, guided=guided)

    def map_ready(self, class_idx: int, layer: int | str) -> bool:
        """Whether the class's gradient at the layer needs no further network pass (layer4's
        closed form never does)."""
        closed_form = stage_index(layer) == 3 and self._twin.fc_weight is not None
        return closed_form or self.stored(class_idx, stages=True)

    def drawable(self, class_idx: int, layer: int | str) -> bool:
        """Whether the class's map at the layer and its guided map need no further network pass."""
        return self.map_ready(class_idx, layer) and self.stored(class_idx, guided=True)

    def wait_until(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Waits until condition() holds, checked each time a pass stores a class; False on timeout.

        A background pass stores its classes one by one, top class first: a view of a class can
        start as soon as its own backward passes are done, not when the whole top-k is.
        """
        return self._gradients.wait_until(condition, timeout)

    def _ensure(self, class_idx: int, *, stages: bool = False, guided: bool = False, pause: Pause = no_pause) -> ClassGradients:
        """Computes what is missing for the class; a missing top-k class brings the whole top-k."""
        self._check_class(class_idx)
        batch = self.top_classes if class_idx in self.top_classes else [class_idx]
        return self._gradients.ensure(class_idx, batch, stages=stages, guided=guided, pause=pause)

    def lead(self) -> Self:
        """If the first pass left out the top class's guided map, computes it and the class's
        stage gradients in a pass of its own: what a page's guided panels and strip wait for,
        which a scheduler may run sooner than the rest of the top-k."""
        top = self.top_classes[0]
        if not self.stored(top, guided=True):
            self._gradients.ensure(top, [top], stages=True, guided=True)
        return self

    def complete(self, pause: Pause = no_pause) -> Self:
        """Computes every stage and guided gradient for the whole top-k in one pass, which calls
        ``pause`` between its steps (a background completion yields to first views there)."""
        # The first view may hold the top class whole already: ask for a class that is missing,
        # which brings the rest of the top-k with it.
        missing = [c for c in self.top_classes if not self.stored(c, stages=True, guided=True)]
        if missing:
            self._ensure(missing[0], stages=True, guided=True, pause=pause)
        return self

    def _check_class(self, class_idx: int) -> None:
        if not (isinstance(class_idx, (int, np.integer)) and 0 <= class_idx < self.num_classes):
            raise ValueError(f"class must be an integer from 0 to {self.num_classes - 1}, not {class_idx!r}")


def resize_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(n, h, w) → (n, H, W) float64, bilinear with half-pixel centres, antialiased when shrinking
    (tiny originals): :func:`core.resample.resize`, which the page repeats bit for bit."""
    return torch.from_numpy(resize(maps.detach().cpu().numpy(), size))


def over_picture(maps: Tensor, size: tuple[int, int], input_size: tuple[int, int], box: tuple[int, int, int, int] | None) -> Tensor:
    """(n, h, w) maps over a model input of ``input_size`` (width, height) → (n, H, W) over the
    picture it was made from, bilinear, at ``size`` (width, height).

    A letterboxed input (``box``: the picture's (left, top, width, height) inside it) is first
    brought to the input's size, then cropped to the picture.
    """
    if box is None:
        return resize_maps(maps, size)
    left, top, box_width, box_height = box
    over_input = resize_maps(maps, input_size)
    return resize_maps(over_input[:, top : top + box_height, left : left + box_width], size)


def normalise01(cam: Tensor) -> Tensor:
    """(M − min M) / max(M − min M): the map in [0, 1]; an all-zero (or flat) map becomes zero."""
    cam = cam - cam.min()
    peak = cam.max()
    return cam / peak if peak > 0 else torch.zeros_like(cam)
