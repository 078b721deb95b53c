"""Every model family against independent references, and the engine's promises for each.

Grad-CAM is compared with pytorch-grad-cam's ``GradCAM`` on the same module, with its documented
reshape transform for the transformers, at all four slider positions and for three classes (one
outside the top-k). Guided backprop is compared with captum's ``GuidedBackprop`` where captum sees
every rectifier, and with a hand-built reference (analytic derivatives) where it cannot.

The models are torchvision's own architectures, random-init with randomised BatchNorm statistics
and with the degenerate parts of torchvision's init made trained-like: ViT's zero head (every
map would be zero) and ConvNeXt's 1e-6 layer scales (the network would be nearly the identity).
CNNs run at 128 px to keep CI short; ViT and MaxViT take 224 px only.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import GuidedBackprop
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from core.engine import explain
from core.weights import model_info
from tests.models import assert_untouched, model_state
from tests.test_engine import assert_close, smooth_image

#: One model of each family, and the module paths its slider positions must name.
FAMILY_STAGES = {
    "vgg16_bn": ("features.22", "features.32", "features.42", "features.43"),
    "densenet121": ("features.denseblock1", "features.denseblock2", "features.denseblock3", "features.norm5"),
    "mobilenet_v3_large": ("features.3", "features.6", "features.12", "features.16"),
    "efficientnet_b0": ("features.2", "features.3", "features.5", "features.8"),
    "regnet_y_800mf": tuple(f"trunk_output.block{i}" for i in range(1, 5)),
    "convnext_tiny": ("features.1", "features.3", "features.5", "features.7"),
    "swin_t": ("features.1", "features.3", "features.5", "features.7"),
    "vit_b_16": (
        "encoder.layers.encoder_layer_2",
        "encoder.layers.encoder_layer_5",
        "encoder.layers.encoder_layer_8",
        "encoder.layers.encoder_layer_11.ln_1",
    ),
    "maxvit_t": ("blocks.0", "blocks.1", "blocks.2", "blocks.3"),
}
CNN_SIDE = 128


def family_model(name: str, seed: int = 0) -> nn.Module:
    """torchvision's architecture, random-init, with trained-like statistics and scales."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, weights=None)
    side = 224 if name in ("vit_b_16", "maxvit_t") else CNN_SIDE
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith("layer_scale"):
                param.uniform_(0.2, 0.5)
        if isinstance(model, torchvision.models.VisionTransformer):
            model.heads.head.weight.normal_(0.0, 0.05)
            model.heads.head.bias.normal_(0.0, 0.05)
        # Lived-in BatchNorm: random affine parameters, and running statistics measured on
        # images (identity statistics would leave a deep SiLU network with vanishing gradients).
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for module in norms:
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0.0, 0.1)
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the calibration batch
        if norms:
            model.train()
            model(torch.randn(8, 3, side, side))
    info = model_info(model)
    if name not in ("vit_b_16", "maxvit_t"):
        info = dataclasses.replace(info, input_size=CNN_SIDE)
    model.gradcam_info = info
    return model.eval()


def reshape_for(model: nn.Module):
    """pytorch-grad-cam's documented reshape transforms: ViT tokens to a grid, Swin NHWC to NCHW."""
    if isinstance(model, torchvision.models.VisionTransformer):
        def tokens(t):
            side = math.isqrt(t.shape[1] - 1)
            return t[:, 1:].reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)
        return tokens
    if isinstance(model, torchvision.models.SwinTransformer):
        return lambda t: t.permute(0, 3, 1, 2)
    return None


def non_inplace_final_relu(monkeypatch) -> None:
    """DenseNet's forward ends in F.relu(inplace=True), which overwrites norm5's output after
    pytorch-grad-cam has stored it; the module's output, as we define it, is the value before."""
    monkeypatch.setattr(torchvision.models.densenet.F, "relu", lambda x, inplace=False: torch.relu(x))


@pytest.fixture(scope="module", params=list(FAMILY_STAGES))
def family_case(request):
    name = request.param
    model = family_model(name)
    image = smooth_image(160, 120, seed=3)
    explanation = explain(model, image, top_k=3)
    outside = next(c for c in (0, 500, 999) if c not in explanation.top_classes)
    classes = [explanation.top_classes[0], explanation.top_classes[2], outside]
    return name, model, explanation, classes


def test_stages_are_the_documented_module_paths(family_case):
    name, model, explanation, _ = family_case
    assert explanation.stages == FAMILY_STAGES[name]
    for path, label, activations in zip(explanation.stages, explanation.stage_labels, explanation.stage_activations):
        assert isinstance(model.get_submodule(path), nn.Module)
        assert label == f"{path} · {activations.shape[-2]}×{activations.shape[-1]}"
    if name not in ("vit_b_16",):
        # CNNs: the grid halves from one position to the next (4, 8, 16, 32 at 224 px).
        sides = [a.shape[-1] for a in explanation.stage_activations]
        assert sides == sorted(sides, reverse=True) and len(set(sides)) == 4


def test_gradcam_equals_pytorch_grad_cam_at_every_stage(family_case, monkeypatch):
    name, model, explanation, classes = family_case
    if name == "densenet121":
        non_inplace_final_relu(monkeypatch)
    layers = [model.get_submodule(path) for path in explanation.stages]
    nonzero = 0
    for c in classes:
        with GradCAM(model, layers, reshape_transform=reshape_for(model)) as cam:
            cam(explanation.input_tensor, [ClassifierOutputTarget(c)])
            captured = cam.activations_and_grads
            activations = [a.numpy().copy() for a in captured.activations]
            gradients = [g.numpy().copy() for g in captured.gradients]
            for stage, layer in enumerate(layers):
                reference = np.maximum(cam.get_cam_image(explanation.input_tensor, layer, None, activations[stage], gradients[stage], False), 0)[0]
                ours = explanation.cam(c, stage + 1, raw=True)
                assert_close(ours, reference, allow_zero=True)
                nonzero += bool(reference.any())
    assert nonzero >= 6, "too few non-zero maps for the comparison to mean anything"


@pytest.mark.parametrize("name", ["vgg16_bn", "regnet_y_800mf"])
def test_guided_backprop_equals_captum_on_relu_families(name):
    model = family_model(name)
    before = model_state(model)
    explanation = explain(model, smooth_image(CNN_SIDE, CNN_SIDE, seed=4), top_k=2)
    for c in (explanation.top_classes[0], 7):
        reference = GuidedBackprop(model).attribute(explanation.input_tensor.clone().requires_grad_(), target=c)
        assert_close(explanation.guided_backprop(c), reference[0].permute(1, 2, 0).detach())
    assert_untouched(model, before)


class _DenseNetWithModuleRelu(nn.Module):
    """DenseNet's own forward, with its final functional ReLU as a module that captum can see."""

    def __init__(self, densenet: nn.Module) -> None:
        super().__init__()
        self.net = densenet
        self.final_relu = nn.ReLU()

    def forward(self, x):
        out = self.final_relu(self.net.features(x))
        return self.net.classifier(torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1))


def test_guided_backprop_sees_densenets_functional_relu():
    model = family_model("densenet121")
    explanation = explain(model, smooth_image(CNN_SIDE, CNN_SIDE, seed=5), top_k=1)
    reference_model = _DenseNetWithModuleRelu(copy.deepcopy(model)).eval()
    c = explanation.top_classes[0]
    reference = GuidedBackprop(reference_model).attribute(explanation.input_tensor.clone().requires_grad_(), target=c)
    assert_close(explanation.guided_backprop(c), reference[0].permute(1, 2, 0).detach())
    # captum on the model itself misses that ReLU, so it must disagree with the reference.
    missed = GuidedBackprop(model).attribute(explanation.input_tensor.clone().requires_grad_(), target=c)
    assert not torch.allclose(missed, reference, rtol=1e-3, atol=1e-3 * reference.abs().max().item())


# ----- guided backprop beyond ReLU: a hand-built reference with analytic derivatives -----------


def _derivative(kind: str, x: torch.Tensor) -> torch.Tensor:
    if kind == "relu":
        return (x > 0).to(x.dtype)
    if kind == "silu":
        s = torch.sigmoid(x)
        return s * (1 + x * (1 - s))
    if kind == "gelu":
        return 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if kind == "hardswish":
        return torch.where(x < -3, torch.zeros_like(x), torch.where(x > 3, torch.ones_like(x), (2 * x + 3) / 6))
    raise ValueError(kind)


class _GuidedActivation(nn.Module):
    def __init__(self, kind: str, forward) -> None:
        super().__init__()
        self.kind, self.fn = kind, forward

    def forward(self, x):
        kind, fn = self.kind, self.fn

        class Guided(torch.autograd.Function):
            @staticmethod
            def forward(ctx, inp):
                ctx.save_for_backward(inp)
                return fn(inp)

            @staticmethod
            def backward(ctx, grad):
                (inp,) = ctx.saved_tensors
                return _derivative(kind, inp) * grad.clamp(min=0)

        return Guided.apply(x)


def guided_reference(model: nn.Module, x: torch.Tensor, class_idx: int) -> torch.Tensor:
    """Guided backprop by swapping each rectifier module in a private copy for the rule."""
    kinds = {nn.ReLU: "relu", nn.SiLU: "silu", nn.GELU: "gelu", nn.Hardswish: "hardswish"}
    private = copy.deepcopy(model).eval()
    swapped = 0
    for parent in private.modules():
        for child_name, child in parent.named_children():
            if type(child) in kinds:
                setattr(parent, child_name, _GuidedActivation(kinds[type(child)], lambda t, m=type(child)(): m(t)))
                swapped += 1
    assert swapped > 0
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(private(x)[0, class_idx], x)
    return grad[0].permute(1, 2, 0)


@pytest.mark.parametrize("name", ["efficientnet_b0", "mobilenet_v3_large", "convnext_tiny"])
def test_guided_backprop_beyond_relu_equals_the_hand_built_reference(name):
    model = family_model(name)
    explanation = explain(model, smooth_image(CNN_SIDE, CNN_SIDE, seed=6), top_k=1)
    c = explanation.top_classes[0]
    reference = guided_reference(model, explanation.input_tensor, c)
    assert_close(explanation.guided_backprop(c), reference.detach(), rtol=1e-3)
    # It is not silently the plain gradient, as in the other libraries.
    x = explanation.input_tensor.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(model(x)[0, c], x)
    plain = plain[0].permute(1, 2, 0)
    assert (reference - plain).abs().max() > 0.05 * plain.abs().max()
    assert explanation.has_relu == (name == "mobilenet_v3_large")


# ----- the shared model, threads, and fixed-size inputs ------------------------------------------


def test_user_hooks_never_fire_and_the_model_is_untouched():
    model = family_model("swin_t")
    before = model_state(model)
    fired = []
    leaf = model.features[1][0].mlp[0]
    handle = leaf.register_forward_hook(lambda *args: fired.append(1))
    try:
        explanation = explain(model, smooth_image(100, 90, seed=7), top_k=2)
        explanation.guided_gradcam(explanation.top_classes[1], 2)
    finally:
        handle.remove()
    assert fired == []
    assert_untouched(model, before)


def test_eight_threads_across_two_families_agree_with_sequential_calls():
    models = {"vit_b_16": family_model("vit_b_16"), "efficientnet_b0": family_model("efficientnet_b0")}
    images = [smooth_image(96 + 8 * i, 80, seed=20 + i) for i in range(4)]

    def run(name: str, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        explanation = explain(models[name], image, top_k=2)
        c = explanation.top_classes[1]
        return explanation.cam(c, 3), explanation.guided_backprop(c)

    jobs = [(name, image) for name in models for image in images]
    sequential = [run(*job) for job in jobs]
    threaded: list = [None] * len(jobs)

    def worker(i: int) -> None:
        threaded[i] = run(*jobs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (cam_a, guided_a), (cam_b, guided_b) in zip(sequential, threaded):
        # Threads share the cores, so kernels may split work differently: rounding, not mix-ups.
        np.testing.assert_allclose(cam_b, cam_a, atol=1e-5)
        np.testing.assert_allclose(guided_b, guided_a, atol=1e-5 * np.abs(guided_a).max())


def test_a_fixed_size_model_sees_the_image_letterboxed_and_maps_come_back_at_its_aspect():
    model = family_model("vit_b_16")
    image = smooth_image(300, 150, seed=8)
    explanation = explain(model, image, top_k=1)
    assert tuple(explanation.input_tensor.shape) == (1, 3, 224, 224)
    left, top, width, height = explanation.content_box
    assert (left, width) == (0, 224) and height == 112 and top == 56
    # The border is the mean colour: zero after normalisation.
    assert not explanation.input_tensor[..., :top, :].any() and not explanation.input_tensor[..., top + height :, :].any()
    c = explanation.top_classes[0]
    cam = explanation.cam(c, 4)
    assert cam.shape == (150, 300)
    # The same map, by hand: upsample the 14×14 map over the 224² input, crop the image, resize.
    raw = torch.as_tensor(explanation.cam(c, 4, raw=True))[None, None]
    over_input = F.interpolate(raw, size=(224, 224), mode="bilinear", align_corners=False)
    cropped = over_input[..., top : top + height, left : left + width]
    by_hand = F.interpolate(cropped, size=(150, 300), mode="bilinear", align_corners=False)[0, 0]
    by_hand = (by_hand - by_hand.min()) / (by_hand.max() - by_hand.min())
    np.testing.assert_allclose(cam, by_hand.numpy(), atol=1e-5)
    assert explanation.guided_backprop(c).shape == (150, 300, 3)



def test_building_a_twin_never_breaks_another_threads_explanation():
    """torch.fx patches nn.Module.__call__ process-wide while it traces: explanations running in
    other threads at that moment must wait for it, not fail."""
    from core.forward import Twin

    running = torchvision.models.resnet18().eval()
    image = smooth_image(64, 64, seed=9)
    reference = explain(running, image, top_k=1).cam(0, 3)
    failures: list[BaseException] = []
    stop = threading.Event()

    def explain_in_a_loop() -> None:
        while not stop.is_set():
            try:
                np.testing.assert_allclose(explain(running, image, top_k=1).cam(0, 3), reference, rtol=1e-5, atol=1e-6)
            except BaseException as err:  # noqa: BLE001 - any failure in the thread fails the test
                failures.append(err)
                return

    worker = threading.Thread(target=explain_in_a_loop)
    worker.start()
    try:
        for name in ("mobilenet_v3_large", "efficientnet_b0", "densenet121"):
            Twin(torchvision.models.get_model(name).eval())
    finally:
        stop.set()
        worker.join()
    assert not failures, failures[0]


def test_a_users_checkpoint_of_another_family_loads_with_its_own_class_count(tmp_path):
    from core.weights import load_model

    torch.manual_seed(0)
    trained = torchvision.models.mobilenet_v3_large(num_classes=7)
    path = tmp_path / "my_mobilenet.pth"
    torch.save({"state_dict": trained.state_dict()}, path)
    model = load_model("mobilenet_v3_large", weights=path, device="cpu")
    assert model.classifier[3].out_features == 7
    assert model_info(model).categories == tuple(f"class {i}" for i in range(7))
    explanation = explain(model, smooth_image(96, 96, seed=10), top_k=3)
    assert len(explanation.predictions) == 3 and explanation.stages[-1] == "features.16"
