"""Deletion/insertion and confidence drop: known answers, the documented costs, and on a model
trained inside the test, maps that point at the object beat their inverse and random maps."""

from __future__ import annotations

import dataclasses
import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.engine import explain
from core.faithfulness import Faithfulness, evaluate
from core.forward import BATCH_SIZE
from tests.models import assert_untouched, model_state, random_resnet
from tests.synthetic import trained_on_scenes
from tests.test_engine import smooth_image
from tests.test_methods import count_passes

IMAGES = 10  # held-out scenes averaged over
STEPS = 8  # enough to order the maps; the default 16 only smooths the curves


@pytest.fixture(scope="module")
def trained():
    return trained_on_scenes()


def input_map(cam_raw: np.ndarray, shape: torch.Size) -> torch.Tensor:
    """The raw map as the engine ranks pixels: bilinear to the model input, min-max to [0, 1]."""
    upsampled = F.interpolate(torch.from_numpy(cam_raw)[None, None], size=tuple(shape), mode="bilinear", align_corners=False)[0, 0]
    upsampled = upsampled - upsampled.min()
    return upsampled / upsampled.max()


def class_probability(model, class_idx: int):
    """p_c from the model itself, not the twin: an independent check of the engine's batches."""

    def probabilities(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(model(batch).double(), dim=1)[:, class_idx]

    return probabilities


def test_maps_on_the_object_beat_their_inverse_and_random_maps(trained):
    model, held_out = trained
    generator = torch.Generator().manual_seed(0)
    scores: dict[str, list[Faithfulness]] = {}
    for n, (image, _, label) in enumerate(held_out[:IMAGES]):
        explanation = explain(model, image, top_k=2)
        x = explanation.input_tensor
        probabilities = class_probability(model, label)
        gradcam = input_map(explanation.cam(label, 4, raw=True), x.shape[-2:])
        scores.setdefault("gradcam", []).append(explanation.faithfulness(label, 4, steps=STEPS))
        if n == 0:  # the engine ranks the map it documents, and its batches score like the model
            reference = evaluate(x, gradcam, probabilities, STEPS)
            assert scores["gradcam"][0].deletion == pytest.approx(reference.deletion, abs=1e-5)
            assert scores["gradcam"][0].insertion == pytest.approx(reference.insertion, abs=1e-5)
        for name, saliency in (("1 - gradcam", 1 - gradcam), ("random", torch.rand(x.shape[-2:], generator=generator))):
            scores.setdefault(name, []).append(evaluate(x, saliency, probabilities, STEPS))

    deletion = {name: float(np.mean([s.deletion_auc for s in runs])) for name, runs in scores.items()}
    insertion = {name: float(np.mean([s.insertion_auc for s in runs])) for name, runs in scores.items()}
    print("deletion AUC", {k: round(v, 3) for k, v in deletion.items()})
    print("insertion AUC", {k: round(v, 3) for k, v in insertion.items()})
    # Grad-CAM at layer4 points at the object on this model (test_semantics); its margins here: ≈ 0.1-0.3.
    for worse in ("1 - gradcam", "random"):
        assert deletion["gradcam"] < deletion[worse], worse
        assert insertion["gradcam"] > insertion[worse], worse


QUARTER = (slice(0, 112), slice(56, 168))  # exactly 1/4 of a 224×224 input: a kink on the 1/16 grid


def pixels_kept(x: torch.Tensor):
    """A stand-in model: the share of the quarter's pixels that still equal the input's."""

    def probabilities(batch: torch.Tensor) -> torch.Tensor:
        same = (batch == x).all(dim=1)[:, QUARTER[0], QUARTER[1]]
        return same.double().mean(dim=(1, 2))

    return probabilities


def test_known_curves_and_areas():
    """Deleting the quarter first empties p by f = 1/4: the area is 1/8, the inverse's 7/8."""
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    quarter = torch.zeros(224, 224)
    quarter[QUARTER] = 1
    best = evaluate(x, quarter, pixels_kept(x))
    assert best.fractions == tuple(i / 16 for i in range(17))
    assert best.deletion == pytest.approx([max(0.0, 1 - 4 * i / 16) for i in range(17)])
    assert best.insertion == pytest.approx([min(1.0, 4 * i / 16) for i in range(17)])
    assert (best.deletion_auc, best.insertion_auc) == pytest.approx((1 / 8, 7 / 8))
    assert (best.probability, best.masked_probability, best.average_drop, best.increase) == (1, 1, 0, False)

    worst = evaluate(x, 1 - quarter, pixels_kept(x))
    assert (worst.deletion_auc, worst.insertion_auc) == pytest.approx((7 / 8, 1 / 8))
    assert (worst.masked_probability, worst.average_drop, worst.increase) == (0, 1, False)


@pytest.fixture(scope="module")
def random_case():
    model = random_resnet("resnet18", seed=21)
    return model, explain(model, smooth_image(320, 240, 22), top_k=2)


@pytest.mark.parametrize("steps", [1, 5, 16])
def test_curves_and_scores_are_well_formed(random_case, steps):
    model, explanation = random_case
    c = explanation.top_classes[1]
    result = explanation.faithfulness(c, 3, "layercam", steps=steps)
    assert len(result.fractions) == len(result.deletion) == len(result.insertion) == steps + 1
    assert result.fractions[0] == 0 and result.fractions[-1] == 1 and list(result.fractions) == sorted(result.fractions)
    assert 0 <= result.deletion_auc <= 1 and 0 <= result.insertion_auc <= 1
    assert result.deletion_auc == pytest.approx(np.trapezoid(result.deletion, result.fractions))
    # The curves start and end on the image itself; the fully deleted image is the mean colour.
    probability = torch.softmax(explanation.logits.double(), 0)[c].item()
    assert result.deletion[0] == result.insertion[-1] == result.probability == pytest.approx(probability, rel=1e-5)
    mean_colour = class_probability(model, c)(torch.zeros_like(explanation.input_tensor)).item()
    assert result.deletion[-1] == result.insertion[0] == pytest.approx(mean_colour, rel=1e-5)
    drop = max(0.0, result.probability - result.masked_probability) / result.probability
    assert result.average_drop == pytest.approx(drop) and result.increase == (result.masked_probability > result.probability)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.deletion_auc = 0.0  # type: ignore[misc]


def test_an_all_zero_map_is_scored_without_nan(random_case):
    model, explanation = random_case
    c = explanation.top_classes[0]
    x = explanation.input_tensor
    result = evaluate(x, torch.zeros(x.shape[-2:]), class_probability(model, c), steps=8)
    values = [*result.deletion, *result.insertion, result.deletion_auc, result.insertion_auc, result.average_drop]
    assert np.isfinite(values).all()
    # x · 0 is the mean-colour image, which is also where deletion ends. The two go through the
    # network in batches of different sizes, whose float32 kernels round differently (~2e-6).
    assert result.masked_probability == pytest.approx(result.deletion[-1], rel=1e-5)


def test_cost_is_the_documented_number_of_batches_and_results_are_cached(random_case, monkeypatch):
    _, explanation = random_case
    counts = count_passes(monkeypatch)
    c = explanation.top_classes[0]
    for steps in (7, 8, 16):  # 15, 17 and 33 images
        before = counts["batches"]
        first = explanation.faithfulness(c, 4, steps=steps)
        assert counts["batches"] - before == math.ceil((2 * steps + 1) / BATCH_SIZE)
        assert explanation.faithfulness(c, "layer4", "gradcam", steps=steps) is first
        assert counts["batches"] - before == math.ceil((2 * steps + 1) / BATCH_SIZE)
    assert counts["backward"] == 0


def test_concurrent_requests_compute_once(random_case, monkeypatch):
    _, explanation = random_case
    counts = count_passes(monkeypatch)
    c = explanation.top_classes[1]
    results: list = [None] * 4
    barrier = threading.Barrier(len(results))

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = explanation.faithfulness(c, 2, "gradcam++", steps=6)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert counts["batches"] == 1 and all(r is results[0] for r in results)


def test_faithfulness_leaves_the_model_untouched_and_rejects_bad_steps():
    model = random_resnet("resnet18", seed=23)
    before = model_state(model)
    explanation = explain(model, smooth_image(224, 224, 24), top_k=1)
    explanation.faithfulness(explanation.top_classes[0], 4, "ablationcam", steps=4)
    assert_untouched(model, before)
    for bad in (0, 65, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            explanation.faithfulness(explanation.top_classes[0], 4, steps=bad)
    with pytest.raises(ValueError, match="method"):
        explanation.faithfulness(0, 4, "nope")
