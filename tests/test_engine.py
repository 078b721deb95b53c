"""The engine against independent references (captum), and its promises about the shared model."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop, GuidedGradCam, LayerGradCam
from PIL import Image

from core.engine import explain, stage_index
from tests.models import assert_untouched, hooks_on, model_state, random_resnet


def smooth_image(width: int, height: int, seed: int) -> Image.Image:
    """A random but natural-ish picture: low-frequency colour blobs plus a little noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    picture = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noisy = np.asarray(picture, dtype=np.float64) + rng.normal(0, 12, size=(height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def assert_close(ours, reference, rtol: float = 1e-4, allow_zero: bool = False) -> None:
    """Equal within rtol of the reference's largest magnitude."""
    ours = torch.as_tensor(np.asarray(ours), dtype=torch.float64)
    reference = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    assert ours.shape == reference.shape
    scale = reference.abs().max().item()
    if allow_zero and scale == 0:
        assert not ours.any()
        return
    assert scale > 0, "the reference is all zero: the comparison would prove nothing"
    error = (ours - reference).abs().max().item()
    assert error <= rtol * scale, f"max error {error:.3g} vs scale {scale:.3g}"


@pytest.fixture(scope="module", params=["resnet18", "resnet50"])
def reference_case(request):
    model = random_resnet(request.param, seed=1)
    image = smooth_image(224, 224, seed=2)
    explanation = explain(model, image, top_k=3)
    outside = next(c for c in (0, 500, 999) if c not in explanation.top_classes)
    classes = [explanation.top_classes[0], explanation.top_classes[2], outside]
    return model, explanation, classes


@pytest.mark.parametrize("layer", [1, 2, 3, 4])
def test_raw_cam_equals_captum_layer_gradcam(reference_case, layer):
    model, explanation, classes = reference_case
    stage = getattr(model, f"layer{layer}")
    gradcam = LayerGradCam(model, stage)
    for c in classes:
        reference = gradcam.attribute(explanation.input_tensor, target=c, relu_attributions=True)
        # A random network can argue against a class everywhere: then both maps must be zero.
        assert_close(explanation.cam(c, layer, raw=True), reference[0, 0].detach(), allow_zero=True)
        # The signed sum before the ReLU is never all zero, so it checks the gradients every time.
        signed = gradcam.attribute(explanation.input_tensor, target=c, relu_attributions=False)
        ours = explanation.gradients(c, layer).mean((1, 2))[:, None, None].mul(explanation.stage_activations[layer - 1]).sum(0)
        assert_close(ours, signed[0, 0].detach())
    assert hooks_on(model) == 0


def test_guided_backprop_equals_captum(reference_case):
    model, explanation, classes = reference_case
    for c in classes:
        reference = GuidedBackprop(model).attribute(explanation.input_tensor.clone().requires_grad_(), target=c)
        assert_close(explanation.guided_backprop(c), reference[0].permute(1, 2, 0).detach())


@pytest.mark.parametrize("layer", [1, 4])
def test_guided_gradcam_equals_captum_with_bilinear_upsampling(reference_case, layer):
    model, explanation, classes = reference_case
    stage = getattr(model, f"layer{layer}")
    for c in classes:
        reference = GuidedGradCam(model, stage).attribute(
            explanation.input_tensor.clone().requires_grad_(), target=c, interpolate_mode="bilinear"
        )[0].permute(1, 2, 0).detach()
        # captum multiplies by the upsampled raw map; ours by the same map scaled to [0, 1].
        raw = torch.as_tensor(explanation.cam(c, layer, raw=True))[None, None]
        upsampled = F.interpolate(raw, size=(224, 224), mode="bilinear", align_corners=False)[0, 0]
        assert_close(explanation.guided_backprop(c) * upsampled.numpy()[..., None], reference, allow_zero=True)
        low, high = upsampled.min(), upsampled.max()
        if high == low:
            assert not explanation.guided_gradcam(c, layer).any()
            continue
        expected = explanation.guided_backprop(c) * ((upsampled - low) / (high - low)).numpy()[..., None]
        assert_close(explanation.guided_gradcam(c, layer), expected, rtol=1e-5)


def test_counterfactual_negates_the_gradient(reference_case):
    model, explanation, classes = reference_case
    c = classes[0]
    for layer in (2, 4):
        index = stage_index(layer)
        activations = explanation.stage_activations[index]
        gradients = explanation.gradients(c, layer)
        weighted = gradients.mean((1, 2))[:, None, None].mul(activations).sum(0)
        counter = explanation.cam(c, layer, raw=True, counterfactual=True)
        np.testing.assert_allclose(counter, torch.relu(-weighted).numpy(), atol=1e-5 * weighted.abs().max().item())
        cam = explanation.cam(c, layer, raw=True)
        both = (cam > 0) & (explanation.cam(c, layer, raw=True, counterfactual=True) > 0)
        assert not both.any(), "a cell cannot argue both for and against the class"


def test_layer4_closed_form_matches_autograd():
    model = random_resnet("resnet18", seed=3)
    explanation = explain(model, smooth_image(224, 224, 4), top_k=2)
    x = explanation.input_tensor.clone()
    activations = {}
    handle = model.layer4.register_forward_hook(lambda m, i, o: activations.setdefault("a4", o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    c = explanation.top_classes[1]
    (reference,) = torch.autograd.grad(logits[0, c], activations["a4"])
    assert_close(explanation.gradients(c, 4), reference[0])
    assert all(p.grad is None for p in model.parameters())


def test_predictions_are_the_softmax_top_k():
    model = random_resnet("resnet18", seed=5)
    image = smooth_image(300, 200, 6)
    explanation = explain(model, image, top_k=4)
    with torch.no_grad():
        probabilities = torch.softmax(model(explanation.input_tensor)[0], 0)
    top = torch.topk(probabilities, 4)
    assert [p.index for p in explanation.predictions] == top.indices.tolist()
    np.testing.assert_allclose([p.probability for p in explanation.predictions], top.values.numpy(), rtol=1e-4)
    assert explanation.predictions[0].label == explanation.info.categories[explanation.predictions[0].index]
    assert explanation.input_tensor.shape == (1, 3, 224, 336)


def test_explaining_leaves_the_shared_model_untouched():
    model = random_resnet("resnet18", seed=7)
    model.layer2.train()  # an odd mode mix must survive too
    before = model_state(model)
    explanation = explain(model, smooth_image(256, 192, 8), top_k=3)
    for c in (*explanation.top_classes, 10):
        for layer in range(1, 5):
            explanation.cam(c, layer)
        explanation.guided_gradcam(c, 2)
    assert_untouched(model, before)


def test_explanation_holds_no_graph():
    model = random_resnet("resnet18", seed=9)
    explanation = explain(model, smooth_image(224, 224, 10), top_k=2)
    held = [*explanation.stage_activations, explanation.logits]
    for entry in explanation._gradients.classes.values():
        held += [*(entry.stages or []), *([entry.guided] if entry.guided is not None else [])]
    assert held and all(t.grad_fn is None and not t.requires_grad for t in held)


def count_passes(monkeypatch) -> list[int]:
    """One entry per pass through GradientStore.run_pass from here on."""
    from core.passes import GradientStore

    passes: list[int] = []
    original = GradientStore.run_pass
    monkeypatch.setattr(GradientStore, "run_pass", lambda self, select, **kwargs: (passes.append(1), original(self, select, **kwargs)))
    return passes


def test_lazy_equals_eager_and_computes_on_demand(monkeypatch):
    model = random_resnet("resnet18", seed=11)
    image = smooth_image(320, 240, 12)
    eager = explain(model, image, top_k=3)
    passes = count_passes(monkeypatch)
    lazy = explain(model, image, top_k=3, lazy=True)
    assert len(passes) == 1
    top = lazy.top_classes[0]
    np.testing.assert_array_equal(lazy.cam(top, 4), eager.cam(top, 4))
    np.testing.assert_array_equal(lazy.guided_backprop(top), eager.guided_backprop(top))
    assert len(passes) == 1, "layer4 and the top class's guided map come with the first pass"
    for c in eager.top_classes:
        for layer in (1, 2, 3):
            np.testing.assert_allclose(lazy.cam(c, layer), eager.cam(c, layer), atol=1e-6)
        np.testing.assert_allclose(lazy.guided_backprop(c), eager.guided_backprop(c), atol=1e-6)
    assert len(passes) == 2, "the rest of the top-k arrives in one more pass"
    lazy.cam(123, 2)
    lazy.guided_backprop(123)
    lazy.cam(123, 1)
    assert len(passes) == 3, "a class outside the top-k costs one pass, then is cached"


def test_a_lazy_first_view_without_the_guided_map_is_a_forward_pass_alone(monkeypatch):
    """The page's first view: layer4's closed form needs no gradient, so the first pass records
    no graph and takes no backward pass. Away from layer4 it takes the top class's stages, and
    still no guided pass."""
    from core.forward import Twin

    grad_enabled, backward = [], []
    forward, grad = Twin.forward, torch.autograd.grad
    monkeypatch.setattr(Twin, "forward", lambda self, x, rule: (grad_enabled.append(torch.is_grad_enabled()), forward(self, x, rule))[1])
    monkeypatch.setattr(torch.autograd, "grad", lambda *args, **kwargs: (backward.append(1), grad(*args, **kwargs))[1])
    model, image = random_resnet("resnet18", seed=3), smooth_image(160, 120, 4)
    lazy = explain(model, image, top_k=3, lazy=True, top_class_guided=False)
    assert grad_enabled == [False] and backward == []
    assert lazy.map_ready(lazy.top_classes[0], 4) and not lazy.map_ready(lazy.top_classes[0], 3)
    away = explain(model, image, top_k=3, lazy=True, top_class_stages=True, top_class_guided=False)
    assert grad_enabled == [False, True] and len(backward) == 1, "one backward pass: the top class's stages"
    assert away.stored(away.top_classes[0], stages=True) and not away.stored(away.top_classes[0], guided=True)


def test_a_completion_stores_each_class_whole_the_likeliest_first(monkeypatch):
    """Class by class, guided then plain: the page's guided panels and strip of the top class
    need not wait for the other classes' backward passes."""
    from core.passes import GradientStore

    stored = []
    store = GradientStore.store
    monkeypatch.setattr(GradientStore, "store", lambda self, c, **parts: (stored.append((c, *(k for k, v in parts.items() if v is not None))), store(self, c, **parts))[1])
    lazy = explain(random_resnet("resnet18", seed=5), smooth_image(160, 120, 6), top_k=3, lazy=True, top_class_guided=False)
    lazy.complete()
    assert stored == [(c, part) for c in lazy.top_classes for part in ("guided", "stages")]


def test_lead_brings_the_top_class_whole_in_a_pass_of_its_own(monkeypatch):
    lazy = explain(random_resnet("resnet18", seed=7), smooth_image(160, 120, 8), top_k=3, lazy=True, top_class_guided=False)
    passes = count_passes(monkeypatch)
    top, *others = lazy.top_classes
    lazy.lead()
    assert lazy.stored(top, stages=True, guided=True) and not any(lazy.stored(c, stages=True) for c in others)
    lazy.lead()
    lazy.complete()
    assert all(lazy.stored(c, stages=True, guided=True) for c in others) and len(passes) == 2
    explain(random_resnet("resnet18", seed=7), smooth_image(160, 120, 8), top_k=3, lazy=True).lead()
    assert len(passes) == 3, "a first pass that took the guided map leaves the lead nothing to do"


def test_complete_brings_the_rest_of_the_top_k_after_a_lazy_first_view(monkeypatch):
    """A first view away from layer4 holds the top class whole; complete() must still fetch the others."""
    lazy = explain(random_resnet("resnet18", seed=11), smooth_image(160, 120, 12), top_k=3, lazy=True, top_class_stages=True)
    passes = count_passes(monkeypatch)
    assert [lazy.stored(c, stages=True, guided=True) for c in lazy.top_classes] == [True, False, False]
    lazy.complete()
    assert all(lazy.stored(c, stages=True, guided=True) for c in lazy.top_classes)
    lazy.complete()
    assert len(passes) == 1, "one pass for the rest of the top-k, none once it is complete"


def test_eight_threads_agree_with_sequential_calls():
    model = random_resnet("resnet18", seed=13)
    jobs = [(smooth_image(200 + 16 * i, 180 + 8 * i, 20 + i), [3, 50, 7, 900][i % 4], 1 + i % 4) for i in range(8)]

    def run(job):
        image, c, layer = job
        explanation = explain(model, image, top_k=2)
        return explanation.cam(c, layer), explanation.guided_gradcam(c, layer), explanation.top_classes

    sequential = [run(job) for job in jobs]
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def worker(i):
        barrier.wait()
        results[i] = run(jobs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for got, expected in zip(results, sequential):
        assert got is not None
        np.testing.assert_allclose(got[0], expected[0], atol=1e-5)
        np.testing.assert_allclose(got[1], expected[1], atol=1e-5 * np.abs(expected[1]).max())
        assert got[2] == expected[2]
    assert hooks_on(model) == 0 and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("size", [(1, 1), (3, 50), (640, 120), (10000, 10), (97, 301)])
def test_any_image_shape_gives_finite_maps_at_its_own_size(size):
    model = random_resnet("resnet18", seed=15)
    explanation = explain(model, smooth_image(*size, seed=16), top_k=1)
    # Intake caps the longer side at 4096 px (aspect kept); below that the size is the upload's.
    width, height = explanation.size
    assert (width, height) == size or (width == 4096 and size[0] > 4096)
    c = explanation.top_classes[0]
    for layer in (1, 4):
        cam = explanation.cam(c, layer)
        assert cam.shape == (height, width) and cam.dtype == np.float32
        assert np.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1
    gb = explanation.guided_gradcam(c, 3)
    assert gb.shape == (height, width, 3) and np.isfinite(gb).all()


def test_an_all_zero_map_stays_zero():
    model = random_resnet("resnet18", seed=17)
    with torch.no_grad():
        model.fc.weight.zero_()  # every class gradient is zero, so every map is
    explanation = explain(model, smooth_image(224, 224, 18), top_k=1)
    for layer in (1, 4):
        cam = explanation.cam(0, layer)
        assert np.isfinite(cam).all() and not cam.any()


def test_bad_arguments_are_clear_errors():
    model = random_resnet("resnet18", seed=19)
    explanation = explain(model, smooth_image(64, 64, 20), top_k=1)
    with pytest.raises(ValueError, match="layer"):
        explanation.cam(0, 5)
    with pytest.raises(ValueError, match="layer"):
        explanation.cam(0, "conv1")
    with pytest.raises(ValueError, match="class"):
        explanation.cam(1000, 4)
    with pytest.raises(ValueError, match="method"):
        explanation.cam(0, 4, method="nope")
    with pytest.raises(ValueError, match="top_k"):
        explain(model, smooth_image(64, 64, 20), top_k=0)
    assert explanation.cam(0, "layer2").shape == (64, 64)


def test_panels_show_the_explanations_own_guided_gradcam():
    from core.render import gradient_image
    from core.views import panels

    model = random_resnet("resnet18", seed=23)
    explanation = explain(model, smooth_image(160, 120, 24), top_k=2)
    c = explanation.top_classes[1]
    view = panels(explanation, c, 2, counterfactual=True, method="layercam")
    expected = explanation.guided_gradcam(c, 2, counterfactual=True, method="layercam")
    np.testing.assert_array_equal(view.guided_gradcam, gradient_image(expected))
    assert view.guided_gradcam.shape == (120, 160, 3)
