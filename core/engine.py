"""The explanation engine: ``explain`` and the ``Explanation`` it returns.

One call records one forward pass through the model's twin (see :mod:`core.forward`), keeping
the four stage outputs, and takes the class gradients it needs from that single graph (the
passes and their bookkeeping are :mod:`core.passes`; what they stored, the predictions and the
picture's geometry, :class:`core.record.Record`, which ``Explanation`` extends with the maps).
Everything the page can show (any stage, any top-k class, counterfactuals, guided backprop,
Guided Grad-CAM) is then computed from the stored tensors without touching the model. A class
outside the top-k costs one more pass, once, and is cached like the others.

The gradient CAM methods (see :mod:`core.methods`) reuse those tensors, so switching method costs
no pass either. Score-CAM, Ablation-CAM and the faithfulness metrics need scores of perturbed
copies: they run batches through the twin without a graph (:mod:`core.passes`), once, and are cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.faithfulness import STEPS, Faithfulness, evaluate
from core.forward import any_twin, twin_for
from core.intake import read_image, to_model_input
from core.methods import GRADIENT_METHODS, METHODS, PERTURBATION_METHODS, eigencam
from core.record import Prediction, Record, normalise01, resize_maps, stage_index
from core.weights import model_info

__all__ = ["PRECISIONS", "Explanation", "Prediction", "describe_stages", "explain", "native_bfloat16", "stage_index"]


#: "float32" is exact against the reference libraries; "bfloat16" runs the network's matrix work
#: in bfloat16 (torch.autocast) where the hardware does it natively, for speed.
PRECISIONS = ("float32", "bfloat16")


def native_bfloat16(device: torch.device | str = "cpu") -> bool:
    """Whether the device does bfloat16 matrix work in hardware (AVX-512 BF16 / AMX, or CUDA ≥ sm80)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


class Explanation(Record):
    """Everything one (image, model) pair can show, computed from as few passes as possible.

    What the passes stored, the predictions and the picture's geometry are the
    :class:`core.record.Record`'s; the maps drawn from them are here. Maps are numpy float32 at
    the original image's size. Thread-safe: concurrent calls on one Explanation compute any
    missing class once.
    """

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

        For Grad-CAM, map = ReLU(Σ_k α_k A_k) with α_k = (1/hw) Σ_ij ∂y_c/∂A_k[i,j] (every
        method's formula: :mod:`core.methods`). raw=True: the (h, w) map at the stage's own resolution, unnormalised. Otherwise the map
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
        return (normalise01(over_picture) if scaled else over_picture).numpy().astype(np.float32)

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
            saliency = normalise01(resize_maps(cam_raw[None], (width, height))[0]).float()
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
        """Guided backprop × the upsampled, [0, 1]-scaled CAM, per channel: fine-grained and class-discriminative.

        G[i,j,:] = ∂y_c/∂x[i,j,:] (guided) · cam01[i,j]
        """
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


def describe_stages(model: nn.Module) -> list[str]:
    """What each slider position is in this model, e.g. ["features.1 · 56×56", …]: the module path
    (``model.get_submodule`` returns it) and its grid at the model's own input size, square."""
    twin = any_twin(model, model_info(model).input_size)
    return [f"{path} · {height}×{width}" for path, (height, width) in zip(twin.stages, twin.grids)]


def explain(
    model: nn.Module,
    image: Any,
    top_k: int = 5,
    *,
    lazy: bool = False,
    precision: str = "float32",
    top_class_stages: bool = False,
    top_class_guided: bool = True,
) -> Explanation:
    """Explains ``model``'s prediction on ``image`` (anything :func:`core.read_image` takes).

    Runs one forward pass and keeps the top-k predictions and the four stage outputs. With
    lazy=False (the default) it also computes every stage gradient and the guided backprop for
    the whole top-k, in the same pass. With lazy=True it computes only what a first view needs:
    layer4 maps for the top-k where they have a closed form, which takes no backward pass (the
    top class at every stage where they have none, or with top_class_stages), and the top class's
    guided backprop unless top_class_guided is False (then, at layer4 with a closed form, the
    pass is a forward pass alone: the page's first view). The rest arrives, batched for the
    whole top-k, on first use or on ``complete()``; ``lead()`` brings the top class whole first.

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
    explanation._first_pass(top_k, lazy=lazy, top_class_stages=top_class_stages, top_class_guided=top_class_guided)
    return explanation
