"""The explanation engine: ``explain`` and the ``Explanation`` it returns.

One call records one forward pass through the model's twin (see :mod:`core.forward`), keeping
the four stage outputs, and takes the class gradients it needs from that single graph (the
passes and their bookkeeping are :mod:`core.passes`). Everything the page can show (any stage,
any top-k class, counterfactuals, guided backprop, Guided Grad-CAM) is then computed from the
stored tensors without touching the model. A class outside the top-k costs one more pass, once,
and is cached like the others.

The gradient CAM methods (see :mod:`core.methods`) reuse those tensors, so switching method costs
no pass either. Score-CAM, Ablation-CAM and the faithfulness metrics need scores of perturbed
copies: they run batches through the twin without a graph (:mod:`core.passes`), once, and are cached.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from core.faithfulness import STEPS, Faithfulness, evaluate
from core.forward import STAGES, Twin, any_twin, twin_for
from core.intake import letterbox_box, read_image, to_model_input
from core.methods import GRADIENT_METHODS, METHODS, PERTURBATION_METHODS, eigencam
from core.passes import ClassGradients, GradientStore
from core.resample import resize
from core.weights import ModelInfo, model_info


#: "float32" is exact against the reference libraries; "bfloat16" runs the network's matrix work
#: in bfloat16 (torch.autocast) where the hardware does it natively, for speed.
PRECISIONS = ("float32", "bfloat16")


def native_bfloat16(device: torch.device | str = "cpu") -> bool:
    """Whether the device does bfloat16 matrix work in hardware (AVX-512 BF16 / AMX, or CUDA ≥ sm80)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


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


class Explanation:
    """Everything one (image, model) pair can show, computed from as few passes as possible.

    Maps are numpy float32 at the original image's size. Thread-safe: concurrent calls on one
    Explanation compute any missing class once.
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

        Let go of, the Explanation keeps its stored tensors and its twin's outline, enough to draw
        every class it has stored, and pins no parameter but the head's weight; a pass then fails
        until a model is held again. The page's shelf decides when (see core.shelf).
        """
        if model is None:
            self._model, self._twin = None, self._twin.outline()
        else:
            self._model, self._twin = model, twin_for(model, self.info.input_size, fold=self.precision == "bfloat16")
        self._gradients.twin = self._twin  # the passes run through the store's twin

    @property
    def stage_activations(self) -> list[Tensor]:
        """The four stage outputs of the first pass, (C, h, w) each, on the CPU."""
        return self._gradients.stage_activations

    @property
    def logits(self) -> Tensor:
        return self._gradients.logits

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the original image: the size every returned map has."""
        return self.image.size

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
        return _over_picture(maps, size or self.size, (width, height), box)

    @property
    def num_classes(self) -> int:
        return int(self.logits.shape[-1])

    # ----- the network passes (see core.passes) -----------------------------------------

    def _first_pass(self, top_k: int, *, lazy: bool, top_class_stages: bool = False) -> None:
        def select() -> tuple[list[int], list[int]]:
            probabilities = torch.softmax(self.logits.double(), dim=0)
            top = torch.topk(probabilities, min(top_k, self.num_classes))
            labels = self.info.categories
            self.predictions = [
                Prediction(int(i), labels[int(i)], float(p)) for p, i in zip(top.values, top.indices)
            ]
            if not lazy:
                return self.top_classes, self.top_classes
            # A first view shows the top class's guided map, and its map at layer4 (closed form: no
            # backward pass) or, with top_class_stages or without a closed form, at every stage.
            plain = self.top_classes[:1] if top_class_stages or self._twin.fc_weight is None else []
            return plain, self.top_classes[:1]

        self._gradients.first_pass(select)

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

    def _ensure(self, class_idx: int, *, stages: bool = False, guided: bool = False) -> ClassGradients:
        """Computes what is missing for the class; a missing top-k class brings the whole top-k."""
        self._check_class(class_idx)
        batch = self.top_classes if class_idx in self.top_classes else [class_idx]
        return self._gradients.ensure(class_idx, batch, stages=stages, guided=guided)

    def complete(self) -> "Explanation":
        """Computes every stage and guided gradient for the whole top-k in one pass."""
        # The first view may hold the top class whole already: ask for a class that is missing,
        # which brings the rest of the top-k with it.
        missing = [c for c in self.top_classes if not self.stored(c, stages=True, guided=True)]
        if missing:
            self._ensure(missing[0], stages=True, guided=True)
        return self

    @property
    def top_classes(self) -> list[int]:
        return [p.index for p in self.predictions]

    def _check_class(self, class_idx: int) -> None:
        if not (isinstance(class_idx, (int, np.integer)) and 0 <= class_idx < self.num_classes):
            raise ValueError(f"class must be an integer from 0 to {self.num_classes - 1}, not {class_idx!r}")

    # ----- maps ---------------------------------------------------------------------------

    def gradients(self, class_idx: int, layer: int | str) -> Tensor:
        """∂y_c/∂A at the stage, (C, h, w), pre-softmax score y_c."""
        index = stage_index(layer)
        self._check_class(class_idx)
        if index == 3:
            closed_form = self._twin.closed_form_layer4_gradient(class_idx, self.stage_activations[3].shape)
            if closed_form is not None:
                return closed_form
        return self._ensure(class_idx, stages=True).stages[index]

    def cam(
        self,
        class_idx: int,
        layer: int | str = 4,
        *,
        raw: bool = False,
        counterfactual: bool = False,
        method: str = "gradcam",
        channels: int | None = None,
        size: tuple[int, int] | None = None,
        scaled: bool = True,
    ) -> np.ndarray:
        """The class activation map of ``method`` (one of :data:`core.methods.METHODS`) for the class at the stage.

        raw=True: the (h, w) map at the stage's own resolution, unnormalised. Otherwise the map
        is upsampled bilinearly to the original image's size and min-max scaled to [0, 1]; an
        all-zero map stays zero. counterfactual=True uses −∂y_c/∂A: where the image argues
        against the class; only gradient methods have one. ``channels`` caps the channels that
        Score-CAM and Ablation-CAM perturb (defaults: ``SCORECAM_CHANNELS``,
        ``ABLATION_CHANNELS``); their maps are computed once and cached. ``size`` (width, height)
        upsamples straight to a display size instead of the original's: the page draws its maps
        that way from the raw grid, so the server's display panels do too. scaled=False upsamples
        without the min-max scaling: maps of two images on one colour scale (hide-and-see).
        """
        cam_raw = self._raw_cam(class_idx, stage_index(layer), method, counterfactual, channels)
        if raw:
            return cam_raw.numpy().astype(np.float32, copy=False)
        over_picture = self._to_picture(cam_raw[None], size)[0]
        return (_normalise01(over_picture) if scaled else over_picture).numpy().astype(np.float32)

    def _raw_cam(self, class_idx: int, index: int, method: str, counterfactual: bool, channels: int | None) -> Tensor:
        _check_method(method, counterfactual, channels)
        self._check_class(class_idx)
        activations = self.stage_activations[index]
        if method in GRADIENT_METHODS:
            gradients = self.gradients(class_idx, index + 1)
            cam_raw = GRADIENT_METHODS[method](activations, -gradients if counterfactual else gradients)
        elif method == "eigencam":
            cam_raw = eigencam(activations)
        else:
            cam_raw = self._gradients.perturbation_cam(class_idx, index, method, channels)
        return torch.nan_to_num(cam_raw, nan=0.0, posinf=0.0, neginf=0.0)

    def faithfulness(self, class_idx: int, layer: int | str = 4, method: str = "gradcam", *, steps: int = STEPS) -> Faithfulness:
        """Deletion/insertion AUC and confidence drop of the method's map (see :mod:`core.faithfulness`).

        Computed once per (class, stage, method, steps): ⌈(2·steps + 1) / BATCH_SIZE⌉ batched
        passes through the twin without a graph, after whatever the map itself needs.
        """
        index = stage_index(layer)

        def compute() -> Faithfulness:
            cam_raw = self._raw_cam(class_idx, index, method, False, None)
            height, width = self.input_tensor.shape[-2:]
            saliency = _normalise01(_resize(cam_raw[None], (width, height))[0]).float()
            twin = self._twin
            probabilities = lambda batch: torch.softmax(twin.logits(batch).double(), dim=1)[:, class_idx]  # noqa: E731
            return evaluate(self.input_tensor, saliency, probabilities, steps)

        return self._gradients.once(("faithfulness", class_idx, index, method, steps), compute)

    def guided_backprop(self, class_idx: int) -> np.ndarray:
        """∂y_c/∂(input tensor) under the guided ReLU rule, float32 (H, W, 3) at the original size."""
        entry = self._ensure(class_idx, guided=True)
        return self._to_picture(entry.guided).permute(1, 2, 0).numpy().astype(np.float32)

    def guided_gradcam(
        self, class_idx: int, layer: int | str = 4, *, counterfactual: bool = False, method: str = "gradcam"
    ) -> np.ndarray:
        """Guided backprop × the upsampled, [0, 1]-scaled CAM, per channel: fine-grained and class-discriminative."""
        cam01 = self.cam(class_idx, layer, counterfactual=counterfactual, method=method)
        return self.guided_backprop(class_idx) * cam01[..., None]


def _check_method(method: str, counterfactual: bool, channels: int | None) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if counterfactual and method not in GRADIENT_METHODS:
        raise ValueError(
            f"{method} has no counterfactual: it does not use gradients, so there is no −∂y_c/∂A to follow; "
            f"counterfactuals exist for {', '.join(GRADIENT_METHODS)}"
        )
    if channels is not None and (method not in PERTURBATION_METHODS or not _is_positive_int(channels)):
        raise ValueError(
            f"channels caps {' and '.join(PERTURBATION_METHODS)} only, and must be a positive integer; "
            f"got {channels!r} for {method}"
        )


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _resize(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(n, h, w) → (n, H, W) float64, bilinear with half-pixel centres, antialiased when shrinking
    (tiny originals): :func:`core.resample.resize`, which the page repeats bit for bit."""
    return torch.from_numpy(resize(maps.detach().cpu().numpy(), size))


def _over_picture(maps: Tensor, size: tuple[int, int], input_size: tuple[int, int], box: tuple[int, int, int, int] | None) -> Tensor:
    """(n, h, w) maps over a model input of ``input_size`` (width, height) → (n, H, W) over the
    picture it was made from, bilinear, at ``size`` (width, height).

    A letterboxed input (``box``: the picture's (left, top, width, height) inside it) is first
    brought to the input's size, then cropped to the picture.
    """
    if box is None:
        return _resize(maps, size)
    left, top, box_width, box_height = box
    over_input = _resize(maps, input_size)
    return _resize(over_input[:, top : top + box_height, left : left + box_width], size)


def _normalise01(cam: Tensor) -> Tensor:
    cam = cam - cam.min()
    peak = cam.max()
    return cam / peak if peak > 0 else torch.zeros_like(cam)


def describe_stages(model: nn.Module) -> list[str]:
    """What each slider position is in this model, e.g. ["features.1 · 56×56", …]: the module path
    (``model.get_submodule`` returns it) and its grid at the model's own input size, square."""
    twin = any_twin(model, model_info(model).input_size)
    return [f"{path} · {height}×{width}" for path, (height, width) in zip(twin.stages, twin.grids)]


def explain(
    model: nn.Module, image: Any, top_k: int = 5, *, lazy: bool = False, precision: str = "float32", top_class_stages: bool = False
) -> Explanation:
    """Explains ``model``'s prediction on ``image`` (anything :func:`core.read_image` takes).

    Runs one forward pass and keeps the top-k predictions and the four stage outputs. With
    lazy=False (the default) it also computes every stage gradient and the guided backprop for
    the whole top-k, in the same pass. With lazy=True it computes only what a first view needs
    (layer4 maps for the top-k, guided backprop for the top class); the rest arrives, batched
    for the whole top-k, on first use or on ``complete()``.

    ``precision`` is "float32" (exact) or "bfloat16" (autocast; see :func:`native_bfloat16`).
    Models that take one input size only (ViT, MaxViT) see the image letterboxed into it; every
    map is cropped back to the image and returned at its original size and aspect.
    """
    if not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, not {top_k!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    picture = read_image(image)
    info = model_info(model)
    twin = twin_for(model, info.input_size, fold=precision == "bfloat16")
    input_tensor = to_model_input(picture, info.mean, info.std, info.input_size, 2 * info.input_size, square=twin.fixed_input)
    explanation = Explanation(model, picture, input_tensor, info, twin, precision)
    explanation._first_pass(top_k, lazy=lazy, top_class_stages=top_class_stages)
    return explanation
