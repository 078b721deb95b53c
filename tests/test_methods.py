"""The CAM methods against pytorch-grad-cam (pgc), their documented differences, costs and caches.

How maps are compared: pgc's forward scales every map to [0, 1] and resizes it with cv2, which
would blur away a wrong formula. So the tests compare raw maps: pgc's own activations and
gradients are captured by one call of a pgc CAM object on the same input tensor, and fed to the
method's ``get_cam_image`` followed by the ReLU that pgc's forward applies. Ours must equal that
within 1e-4 of its peak, at every stage, which checks our gradients and our formula together.
``test_the_comparison_tells_the_methods_apart`` makes sure a wrong formula would fail.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import (
    AblationCAM,
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import core
from core.engine import explain
from core.forward import BATCH_SIZE, STAGES, Twin
from core.methods import (
    ABLATION_CHANNELS,
    GRADIENT_METHODS,
    METHOD_INFO,
    METHODS,
    SCORECAM_CHANNELS,
    eigencam,
    gradcam_plus_plus,
)
from core.passes import GradientStore
from tests.models import assert_untouched, hooks_on, model_state, random_resnet, tiny_resnet
from tests.test_engine import assert_close, smooth_image

PGC = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "hirescam": HiResCAM,
}
# Grad-CAM++ is compared on the score × 10⁴, which makes pgc's ε = 1e-6 negligible next to g² (its effect
# falls below 2e-5 of the peak), while the "2" in the denominator still moves the map by ~1e-3.
GRADCAM_PP_SCALE = 1e4


def scaled_target(class_idx: int, scale: float = 1.0):
    return lambda logits: scale * logits[class_idx]


def pgc_capture(model, input_tensor, class_idx: int, scale: float = 1.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """pgc's activations and gradients of scale · y_c at layer1..layer4, from one GradCAM call."""
    layers = [getattr(model, stage) for stage in STAGES]
    with GradCAM(model, layers) as cam:
        cam(input_tensor, [scaled_target(class_idx, scale)])
        captured = cam.activations_and_grads
        return [a.numpy().copy() for a in captured.activations], [g.numpy().copy() for g in captured.gradients]


def pgc_raw(method_class, model, stage: int, input_tensor, activations, gradients, targets=None) -> np.ndarray:
    """pgc's map before its scaling: ``get_cam_image`` and the ReLU of its forward, (h, w)."""
    layer = getattr(model, STAGES[stage])
    with method_class(model, [layer]) as cam:
        return np.maximum(cam.get_cam_image(input_tensor, layer, targets, activations, gradients, False), 0)[0]


@pytest.fixture(scope="module", params=["resnet18", "resnet50"])
def case(request):
    model = random_resnet(request.param, seed=1)
    explanation = explain(model, smooth_image(224, 224, seed=2), top_k=3)
    outside = next(c for c in (0, 500, 999) if c not in explanation.top_classes)
    classes = [explanation.top_classes[0], explanation.top_classes[2], outside]
    captures = {c: pgc_capture(model, explanation.input_tensor, c) for c in classes}
    return model, explanation, classes, captures


@pytest.mark.parametrize("method", ["gradcam", "xgradcam", "layercam", "hirescam"])
def test_gradient_methods_equal_pytorch_grad_cam(case, method):
    model, explanation, classes, captures = case
    compared = 0
    for c in classes:
        activations, gradients = captures[c]
        for stage in range(4):
            reference = pgc_raw(PGC[method], model, stage, explanation.input_tensor, activations[stage], gradients[stage])
            # A random network can argue against a class everywhere: then both maps must be zero.
            assert_close(explanation.cam(c, stage + 1, raw=True, method=method), reference, allow_zero=True)
            compared += bool(reference.any())
    assert compared >= 8, "too few non-zero references for the comparison to mean anything"


def test_gradcam_plus_plus_equals_pytorch_grad_cam_where_its_epsilon_is_negligible(case):
    model, explanation, classes, _ = case
    for c in classes:
        activations, gradients = pgc_capture(model, explanation.input_tensor, c, GRADCAM_PP_SCALE)
        for stage in range(4):
            reference = pgc_raw(GradCAMPlusPlus, model, stage, explanation.input_tensor, activations[stage], gradients[stage])
            ours = gradcam_plus_plus(explanation.stage_activations[stage], GRADCAM_PP_SCALE * explanation.gradients(c, stage + 1))
            assert_close(ours, reference)


def paper_gradcam_plus_plus(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Eq. 19 as the authors' code computes it, in float64: a zero denominator is guarded, nothing else."""
    a, g = activations[0].astype(np.float64), gradients[0].astype(np.float64)
    denominator = 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3
    alpha = g**2 / np.where(denominator != 0, denominator, 1)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    return np.maximum(np.einsum("k,khw->hw", weights, a), 0)


def test_gradcam_plus_plus_follows_the_paper_not_pgc_epsilon(case):
    """The documented difference: at the real score, pgc's ε moves its map; ours is the paper's."""
    model, explanation, classes, captures = case
    largest_difference = 0.0
    for c in classes:
        activations, gradients = captures[c]
        for stage in range(4):
            ours = explanation.cam(c, stage + 1, raw=True, method="gradcam++")
            assert_close(ours, paper_gradcam_plus_plus(activations[stage], gradients[stage]))
            pgc = pgc_raw(GradCAMPlusPlus, model, stage, explanation.input_tensor, activations[stage], gradients[stage])
            largest_difference = max(largest_difference, np.abs(ours / ours.max() - pgc / pgc.max()).max())
    assert largest_difference > 1e-2, "pgc's ε no longer matters: drop the documented difference"


def test_the_comparison_tells_the_methods_apart(case):
    """Each method's map differs from every other's by far more than the tolerance, so a formula
    swapped for another would fail. Except at layer4, where the gradient is the same at every
    position: there XGrad-CAM and HiResCAM equal Grad-CAM, as documented."""
    model, explanation, classes, captures = case
    c = classes[0]
    activations, gradients = captures[c]
    for stage in range(4):
        maps = {m: explanation.cam(c, stage + 1, raw=True, method=m) for m in GRADIENT_METHODS}
        for first in GRADIENT_METHODS:
            for second in GRADIENT_METHODS:
                if first >= second:
                    continue
                scale = max(np.abs(maps[first]).max(), np.abs(maps[second]).max())
                difference = np.abs(maps[first] - maps[second]).max()
                if stage == 3 and {first, second} <= {"gradcam", "xgradcam", "hirescam"}:
                    assert difference <= 1e-5 * scale
                else:
                    assert difference > 1e-2 * scale, (stage + 1, first, second)


def test_eigencam_equals_pgc_with_a_fixed_sign(case):
    model, explanation, classes, captures = case
    activations, _ = captures[classes[0]]
    flipped = 0
    for stage in range(4):
        layer = getattr(model, STAGES[stage])
        with EigenCAM(model, [layer]) as cam:
            projection = cam.get_cam_image(explanation.input_tensor, layer, None, activations[stage], None, False)[0]
        # Ours has the sign under which the projection correlates positively with the mean activation.
        sign = np.sign((projection * activations[stage][0].mean(axis=0)).sum())
        flipped += sign < 0
        ours = explanation.cam(classes[0], stage + 1, raw=True, method="eigencam")
        assert_close(ours, np.maximum(sign * projection, 0))
        assert_close(explanation.cam(classes[1], stage + 1, raw=True, method="eigencam"), ours, rtol=0)
    print(f"pgc's Eigen-CAM had the other sign at {flipped} of 4 stages")


def test_eigencam_sign_is_fixed_by_the_data_not_by_lapack():
    """A blob active in every channel: the map must light the blob, however the channels are ordered or scaled."""
    generator = torch.Generator().manual_seed(0)
    blob = torch.zeros(14, 14)
    blob[3:7, 8:12] = 1
    activations = torch.rand(96, 14, 14, generator=generator) * 0.2 + torch.rand(96, 1, 1, generator=generator) * blob
    reference = eigencam(activations)
    assert reference[3:7, 8:12].min() > 0 and reference[blob == 0].max() < reference[3:7, 8:12].min()
    for seed in range(5):
        permutation = torch.randperm(96, generator=torch.Generator().manual_seed(seed))
        assert_close(eigencam(activations[permutation] * (1 + seed)), reference * (1 + seed), rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_case():
    model = tiny_resnet(num_classes=10, seed=3).eval()
    explanation = explain(model, smooth_image(224, 224, seed=4), top_k=10)
    return model, explanation


def test_scorecam_with_every_channel_equals_pgc(tiny_case):
    model, explanation = tiny_case
    c = explanation.top_classes[0]
    for stage in range(4):
        layer = getattr(model, STAGES[stage])
        channels = explanation.stage_activations[stage].shape[0]
        with ScoreCAM(model, [layer]) as cam:
            cam.activations_and_grads(explanation.input_tensor)
            activations = cam.activations_and_grads.activations[0].numpy().copy()
            targets = [ClassifierOutputTarget(c)]
            reference = np.maximum(cam.get_cam_image(explanation.input_tensor, layer, targets, activations, None, False), 0)[0]
        assert_close(explanation.cam(c, stage + 1, raw=True, method="scorecam", channels=channels), reference)


def pgc_ablation(model, stage: int, input_tensor, class_idx: int) -> np.ndarray:
    """pgc's Ablation-CAM map with every channel ablated, before the ReLU, (h, w)."""
    layer = getattr(model, STAGES[stage])
    with AblationCAM(model, [layer]) as cam:
        cam.activations_and_grads(input_tensor)
        activations = cam.activations_and_grads.activations[0].numpy().copy()
        return cam.get_cam_image(input_tensor, layer, [ClassifierOutputTarget(class_idx)], activations, None, False)[0]


def test_ablationcam_with_every_channel_equals_pgc(tiny_case):
    """Layers 1-3 by batched ablation passes, layer4 by the closed form through the linear head."""
    model, explanation = tiny_case
    c = explanation.top_classes[0]
    assert explanation.logits[c] > 0, "the comparison needs a positive score (see the next test)"
    for stage in range(4):
        channels = explanation.stage_activations[stage].shape[0]
        reference = np.maximum(pgc_ablation(model, stage, explanation.input_tensor, c), 0)
        assert_close(explanation.cam(c, stage + 1, raw=True, method="ablationcam", channels=channels), reference)


def test_ablationcam_divides_by_the_absolute_score(tiny_case):
    """The documented difference: for a negative score pgc's weights flip sign, ours do not."""
    model, explanation = tiny_case
    c = next(c for c in reversed(explanation.top_classes) if explanation.logits[c] < 0)
    for stage in (2, 3):
        channels = explanation.stage_activations[stage].shape[0]
        reference = np.maximum(-pgc_ablation(model, stage, explanation.input_tensor, c), 0)
        assert_close(explanation.cam(c, stage + 1, raw=True, method="ablationcam", channels=channels), reference)


def later_layers(model, stage: int, activations: torch.Tensor) -> torch.Tensor:
    """The model's own modules from after ``stage`` to the logits: a reference free of the twin."""
    with torch.no_grad():
        x = activations
        for name in STAGES[stage + 1 :]:
            x = getattr(model, name)(x)
        return model.fc(torch.flatten(model.avgpool(x), 1))


def test_capped_methods_equal_straightforward_references(tiny_case):
    """With a cap, only the documented channels are perturbed: top variance (Score-CAM), top mean (Ablation-CAM)."""
    model, explanation = tiny_case
    c, stage, cap = explanation.top_classes[0], 1, 5
    a = explanation.stage_activations[stage]
    x = explanation.input_tensor

    weights = torch.zeros(a.shape[0], dtype=torch.float64)
    chosen = torch.topk(a.var(dim=(1, 2)), cap).indices
    scores = []
    for k in chosen:
        mask = F.interpolate(a[k][None, None], size=x.shape[-2:], mode="bilinear", align_corners=True)[0, 0]
        mask = (mask - mask.min()) / (mask.max() - mask.min())
        with torch.no_grad():
            scores.append(model(x * mask)[0, c].item())
    weights[chosen] = torch.softmax(torch.tensor(scores, dtype=torch.float64), 0)
    expected = torch.relu((weights[:, None, None] * a.double()).sum(0))
    assert_close(explanation.cam(c, stage + 1, raw=True, method="scorecam", channels=cap), expected)

    drops = torch.zeros(a.shape[0], dtype=torch.float64)
    score = explanation.logits[c].item()
    for k in torch.topk(a.mean(dim=(1, 2)), cap).indices:
        ablated = a.clone()
        ablated[k] = 0
        drops[k] = score - later_layers(model, stage, ablated[None])[0, c].item()
    expected = torch.relu((drops[:, None, None] / abs(score) * a.double()).sum(0))
    assert_close(explanation.cam(c, stage + 1, raw=True, method="ablationcam", channels=cap), expected)


@pytest.mark.parametrize("method", list(GRADIENT_METHODS))
def test_gradient_counterfactuals_negate_the_gradient(tiny_case, method):
    _, explanation = tiny_case
    c = explanation.top_classes[1]
    for layer in (2, 4):
        expected = GRADIENT_METHODS[method](explanation.stage_activations[layer - 1], -explanation.gradients(c, layer))
        ours = explanation.cam(c, layer, raw=True, counterfactual=True, method=method)
        np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-6, atol=1e-7 * float(expected.abs().max()))


def count_passes(monkeypatch) -> dict[str, int]:
    """Counts gradient passes and no-graph batches from here on."""
    counts = {"backward": 0, "batches": 0}
    run_pass, logits, forward_from = GradientStore.run_pass, Twin.logits, Twin.forward_from

    def counted(name, original):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(GradientStore, "run_pass", counted("backward", run_pass))
    monkeypatch.setattr(Twin, "logits", counted("batches", logits))
    monkeypatch.setattr(Twin, "forward_from", counted("batches", forward_from))
    return counts


def test_gradient_methods_cost_no_pass_and_perturbation_costs_are_bounded_and_cached(monkeypatch):
    model = random_resnet("resnet18", seed=5)
    explanation = explain(model, smooth_image(200, 160, 6), top_k=2)
    counts = count_passes(monkeypatch)
    c, outside = explanation.top_classes[0], 7
    for method in (*GRADIENT_METHODS, "eigencam"):
        for layer in range(1, 5):
            explanation.cam(c, layer, method=method)
    assert counts == {"backward": 0, "batches": 0}, "gradient methods reuse the first pass"

    channels = [a.shape[0] for a in explanation.stage_activations]  # 64, 128, 256, 512
    explanation.cam(c, 2, method="scorecam")
    assert counts["batches"] == math.ceil(SCORECAM_CHANNELS / BATCH_SIZE)
    explanation.cam(c, 2, method="scorecam", channels=SCORECAM_CHANNELS)
    explanation.cam(c, 2, raw=True, method="scorecam")
    assert counts["batches"] == math.ceil(SCORECAM_CHANNELS / BATCH_SIZE), "cached, whatever the form asked"

    counts["batches"] = 0
    explanation.cam(outside, 1, method="ablationcam")
    assert counts["batches"] == math.ceil(ABLATION_CHANNELS / BATCH_SIZE)
    explanation.cam(outside, 3, method="ablationcam", channels=1000)  # capped at the stage's 256 channels
    assert counts["batches"] == math.ceil(ABLATION_CHANNELS / BATCH_SIZE) + math.ceil(channels[2] / BATCH_SIZE)
    explanation.cam(outside, 3, method="ablationcam", channels=channels[2])
    counts["batches"] = 0
    explanation.cam(outside, 4, method="ablationcam", channels=3)
    assert counts["batches"] == 0, "layer4 has a closed form: every channel, no pass"
    assert counts["backward"] == 0, "perturbation methods need no gradient, even for a class outside the top-k"


def test_concurrent_requests_compute_a_perturbation_map_once(monkeypatch):
    model = random_resnet("resnet18", seed=7)
    explanation = explain(model, smooth_image(224, 224, 8), top_k=2)
    counts = count_passes(monkeypatch)
    c = explanation.top_classes[0]
    results: list = [None] * 6
    barrier = threading.Barrier(len(results))

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = explanation.cam(c, 3, method="scorecam" if i % 2 else "ablationcam")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert counts["batches"] == math.ceil(SCORECAM_CHANNELS / BATCH_SIZE) + math.ceil(ABLATION_CHANNELS / BATCH_SIZE)
    for i in range(2, len(results)):
        np.testing.assert_array_equal(results[i], results[i % 2])


def test_every_method_leaves_the_shared_model_untouched():
    model = random_resnet("resnet18", seed=9)
    model.layer3.train()
    before = model_state(model)
    explanation = explain(model, smooth_image(160, 224, 10), top_k=2)
    for method in METHODS:
        for layer in (1, 4):
            cam = explanation.cam(explanation.top_classes[1], layer, method=method)
            assert cam.shape == (224, 160) and np.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1
    explanation.faithfulness(explanation.top_classes[0], 4, "scorecam", steps=4)
    assert_untouched(model, before)
    assert hooks_on(model) == 0


def test_bad_method_arguments_are_clear_errors(tiny_case):
    _, explanation = tiny_case
    for method in ("eigencam", "scorecam", "ablationcam"):
        with pytest.raises(ValueError, match=f"{method} has no counterfactual"):
            explanation.cam(0, 4, counterfactual=True, method=method)
    with pytest.raises(ValueError, match="channels caps scorecam and ablationcam only"):
        explanation.cam(0, 4, method="gradcam", channels=8)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            explanation.cam(0, 4, method="scorecam", channels=bad)
    with pytest.raises(ValueError, match="class"):
        explanation.cam(10, 2, method="scorecam")


def test_the_registry_lists_every_method_in_display_order():
    assert core.METHODS is METHODS
    assert METHODS == ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "scorecam", "ablationcam", "eigencam")
    assert tuple(METHOD_INFO) == METHODS
    assert all(" 20" in text for text in METHOD_INFO.values()), "every description names its paper's year"
