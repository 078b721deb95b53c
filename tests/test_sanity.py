"""The sanity check (Adebayo et al., NeurIPS 2018) on a narrow ResNet trained on synthetic scenes
(tests/synthetic.py ``deeper_trained_on_scenes``: two blocks in each stage below layer4).

Cascading randomisation must change Grad-CAM's map and leave guided backprop's largely alone, and
both must come from real randomisation of a private copy: the shared model stays bitwise as it was.

``python docs/figures.py`` prints docs/teaching.md's table from the same sweep, over more seeds and scenes.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

from core.engine import explain
from core.sanity import (
    SANITY_METHODS,
    _random_twin,
    randomisation_steps,
    randomised_copies,
    sanity_check,
    sanity_grid,
    scale01,
    spearman,
    ssim,
)
from core.weights import IMAGENET_MEAN, IMAGENET_STD, ModelInfo, load_model
from tests.models import assert_untouched, model_state
from tests.synthetic import deeper_trained_on_scenes
from tests.test_semantics import inside, peak

# Means over 8 seeds × 4 held-out scenes: with two classes one random draw of the head or of
# layer4 can weight the object's channels like the trained network did, so single runs scatter
# (Grad-CAM's rank correlation at the layer4 step runs from -0.5 to 0.8 over these 32).
SEEDS = tuple(range(8))
IMAGES = 4
STEP_NAMES = ["original", "head", "layer4", "layer3", "layer2", "layer1", "stem"]


def sweep(seeds, images: int) -> list:
    model, held_out = deeper_trained_on_scenes()
    return [
        sanity_check(model, picture, class_idx=label, seed=seed)
        for seed in seeds
        for picture, _, label in held_out[:images]
    ]


def mean(results, step: str, method: str, measure: str) -> float:
    """Mean over the runs; a run whose map is constant (Grad-CAM all zero) has no rank and is left out."""
    values = [getattr(r.step(step).similarity[method], measure) for r in results]
    return float(np.nanmean(values))


@pytest.fixture(scope="module")
def results():
    """Sanity checks of the trained model: every (seed, image) pair; the class is the true label."""
    return sweep(SEEDS, IMAGES)


def test_the_network_learned_the_task_and_gradcam_points_at_the_object():
    """The claims below are about a trained network's explanations: it must have learned the task."""
    model, held_out = deeper_trained_on_scenes()
    correct = hits = 0
    for image, box, label in held_out:
        explanation = explain(model, image, top_k=1)
        correct += explanation.top_classes[0] == label
        hits += inside(peak(explanation.cam(label, 4)), box)
    assert correct / len(held_out) >= 0.9
    assert hits / len(held_out) >= 0.9, "Grad-CAM's peak lies on the object (the pointing game)"


def test_steps_run_from_the_head_down_to_the_stem(results):
    for result in results:
        assert [s.name for s in result.steps] == STEP_NAMES
        assert result.layer == "layer4"
        assert result.steps[1].randomised == ("fc",)
        assert result.steps[-1].randomised[-2:] == ("conv1", "bn1")
        for earlier, later in zip(result.steps[1:], result.steps[2:]):
            assert set(earlier.randomised) < set(later.randomised), "cumulative"
        for step in result.steps:
            for method in SANITY_METHODS:
                picture = step.maps[method]
                assert picture.shape == (224, 224) and picture.dtype == np.float32
                assert 0.0 <= picture.min() and picture.max() <= 1.0


def test_gradcam_rank_correlation_falls_below_half_once_head_and_last_stage_are_randomised(results):
    # The mean over seeds and scenes, as the paper's Figure 2 averages over images (measured: 0.32).
    # Not asserted at the head step alone: with two classes a random head weights the object's
    # channels like the trained one about half the time, and the mean there (0.41) is a coin's.
    assert mean(results, "layer4", "gradcam", "spearman") < 0.5


def test_guided_backprop_stays_similar_where_gradcam_does_not(results):
    # Head and layer4 random: guided backprop's map keeps its structure and its ranking while
    # Grad-CAM's does not (measured: SSIM 0.72 vs 0.33, rank correlation 0.90 vs 0.32).
    layer4 = {m: (mean(results, "layer4", m, "spearman"), mean(results, "layer4", m, "ssim")) for m in ("gradcam", "guided_backprop")}
    assert layer4["guided_backprop"][1] > layer4["gradcam"][1] + 0.25
    assert layer4["guided_backprop"][0] > layer4["gradcam"][0] + 0.3
    # The head alone changes guided backprop less still (SSIM 0.79 vs Grad-CAM's 0.45).
    assert mean(results, "head", "guided_backprop", "ssim") > mean(results, "head", "gradcam", "ssim") + 0.25
    assert mean(results, "head", "guided_backprop", "ssim") > layer4["guided_backprop"][1]
    assert mean(results, "stem", "guided_backprop", "ssim") < 0.2, "a fully random network's guided backprop differs"


def test_guided_backprop_ignores_the_top_of_a_wide_network():
    """resnet18 (512 channels at layer4), rebuilt by torchvision by name: the paper's edge detector.

    Its guided backprop hardly moves when the head and layer4 are replaced. (Grad-CAM is not
    compared here: between two untrained networks both of its maps follow the same padding and
    colour artefacts, so their similarity says nothing about the method.)
    """
    model = load_model("resnet18", weights="random")
    _, held_out = deeper_trained_on_scenes()
    result = sanity_check(model, held_out[0][0], methods=("guided_backprop",))
    assert result.step("layer4").similarity["guided_backprop"].ssim > 0.9
    assert result.step("stem").similarity["guided_backprop"].ssim < 0.6


def test_the_copy_is_randomised_and_the_shared_model_untouched():
    model, held_out = deeper_trained_on_scenes()
    before = model_state(model)
    shared = dict(model.named_modules())
    storage = {p.data_ptr() for p in model.parameters()}
    for name, randomised, private in randomised_copies(model, seed=0):
        assert private is not model
        for path, module in private.named_modules():
            own = [*module.named_parameters(recurse=False)]
            if not own:
                continue
            differs = any(not torch.equal(t, getattr(shared[path], n)) for n, t in own)
            assert differs == (path in randomised), f"{path} after randomising down to {name}"
        assert not storage & {p.data_ptr() for p in private.parameters()}, "no shared storage"
    sanity_check(model, held_out[0][0], methods=("gradcam", "guided_backprop", "guided_gradcam"))
    assert_untouched(model, before)  # tensors bitwise, flags, no .grad, no hook


def test_randomised_layers_follow_torchvisions_resnet_initialisation():
    model, _ = deeper_trained_on_scenes()
    *_, (name, randomised, private) = randomised_copies(model, seed=0)
    assert name == "stem"
    for path, module in private.named_modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            assert module.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.25), path
        elif isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert not module.bias.any() and not module.running_mean.any()
            assert torch.equal(module.running_var, torch.ones_like(module.running_var))
        elif isinstance(module, nn.Linear):  # nn.Linear's default: U(±1/√fan_in)
            assert module.weight.abs().max().item() <= 1 / math.sqrt(module.in_features)


def test_a_named_model_is_reinitialised_by_torchvision_itself():
    model = torchvision.models.resnet18(num_classes=10)
    model.gradcam_info = ModelInfo("resnet18", "checkpoint", True, tuple(f"c{i}" for i in range(10)), IMAGENET_MEAN, IMAGENET_STD)
    fresh = _random_twin(model, seed=3)
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(num_classes=10)
    for key, tensor in reference.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], tensor), key


def test_the_same_seed_gives_the_same_maps(results):
    model, held_out = deeper_trained_on_scenes()
    again = sanity_check(model, held_out[0][0], class_idx=held_out[0][2], seed=SEEDS[0])
    other = sanity_check(model, held_out[0][0], class_idx=held_out[0][2], seed=SEEDS[0] + 100)
    for step, repeat, different in zip(results[0].steps[1:], again.steps[1:], other.steps[1:]):
        assert np.array_equal(step.maps["gradcam"], repeat.maps["gradcam"])
        assert not np.array_equal(step.maps["gradcam"], different.maps["gradcam"])


def test_ssim_equals_scikit_image(results):
    rng = np.random.default_rng(0)
    pairs = [(rng.random((40, 57)), rng.random((40, 57)))]
    base = rng.random((33, 30))
    pairs.append((base, np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1)))
    step = results[0].step("layer4")
    pairs += [(results[0].steps[0].maps[m], step.maps[m]) for m in SANITY_METHODS]
    for a, b in pairs:
        # scikit-image computes float32 maps in float32, this module in float64.
        tolerance = 1e-9 if a.dtype == np.float64 else 1e-6
        assert ssim(a, b) == pytest.approx(structural_similarity(a, b, data_range=1.0), abs=tolerance)
    assert ssim(base, base) == pytest.approx(1.0)


def test_spearman_equals_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(30, 20)), rng.normal(size=(30, 20))
    tied_a, tied_b = np.round(a), np.round(a + b)  # many ties: averaged ranks
    sparse = np.maximum(a, 0)  # a ReLU'd map: half zeros
    for x, y in ((a, b), (tied_a, tied_b), (sparse, a + 0.3 * b)):
        assert spearman(x, y) == pytest.approx(spearmanr(x.ravel(), y.ravel()).statistic, abs=1e-12)
    assert math.isnan(spearman(np.zeros((4, 4)), a[:4, :4])), "a constant map has no ranking"


def test_scale01_maps_the_99th_percentile_to_one():
    values = np.arange(1000, dtype=np.float64).reshape(20, 50)
    scaled = scale01(values)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert scaled.ravel()[989] == pytest.approx(989 / np.percentile(values, 99))
    assert (scaled.ravel()[991:] == 1.0).all()
    assert not scale01(np.zeros((8, 8))).any()
    mostly_zero = np.zeros((10, 10))
    mostly_zero[0, 0] = 5.0
    assert scale01(mostly_zero).max() == 1.0, "a map that is 99% zeros still shows its peak"


def test_steps_group_modules_by_registration_order():
    """Between stages goes with the stage after it (a DenseNet transition); before stage 1, the stem."""
    model = nn.Sequential(
        OrderedDict(
            stem=nn.Conv2d(3, 4, 3),
            block1=nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()),
            transition1=nn.BatchNorm2d(4),
            block2=nn.Conv2d(4, 4, 3),
            block3=nn.Conv2d(4, 4, 3),
            pool=nn.AdaptiveAvgPool2d(1),
            block4=nn.Conv2d(4, 4, 1),
            norm=nn.BatchNorm2d(4),
            head=nn.Sequential(nn.Flatten(), nn.Linear(4, 2)),
        )
    )
    steps = randomisation_steps(model, stages=("block1", "block2", "block3", "block4"))
    assert steps == [
        ("head", ["norm", "head.1"]),
        ("layer4", ["block4"]),
        ("layer3", ["block3"]),
        ("layer2", ["transition1", "block2"]),
        ("layer1", ["block1.0"]),
        ("stem", ["stem"]),
    ]
    owned = [name for name, m in model.named_modules() if [*m.parameters(recurse=False)] or [*m.buffers(recurse=False)]]
    assert sorted(p for _, paths in steps for p in paths) == sorted(owned), "every module exactly once"


def test_bad_requests_are_refused():
    model, held_out = deeper_trained_on_scenes()
    with pytest.raises(ValueError, match="sanity check compares"):
        sanity_check(model, held_out[0][0], methods=("scorecam",))
    with pytest.raises(ValueError, match="class"):
        sanity_check(model, held_out[0][0], class_idx=7, methods=("gradcam",))
    with pytest.raises(ValueError, match="layer"):
        sanity_check(model, held_out[0][0], layer=5)


def test_the_grid_has_a_row_per_method_and_a_column_per_step(results):
    picture = sanity_grid(results[0], tile=64)
    one_row = sanity_grid(dataclasses.replace(results[0], methods=("gradcam",)), tile=64)
    three_columns = sanity_grid(dataclasses.replace(results[0], methods=("gradcam",), steps=results[0].steps[:3]), tile=64)
    assert picture.height > one_row.height + 2 * 64, "a row per method"
    assert one_row.width - three_columns.width == 4 * (64 + 8), "a column per step"
