"""Does the map point at the evidence? A narrow ResNet learns, inside the test, to tell a red disc
from a blue square on a cluttered background; Grad-CAM at layer4 must then find the object."""

from __future__ import annotations

import numpy as np
import pytest

from core.engine import explain
from tests.synthetic import trained_on_scenes


@pytest.fixture(scope="module")
def trained():
    return trained_on_scenes()


def peak(cam: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    return int(x), int(y)


def inside(point: tuple[int, int], box: tuple[int, int, int, int]) -> bool:
    x, y = point
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def test_the_model_learned_the_task(trained):
    model, held_out = trained
    correct = sum(explain(model, image, top_k=1).top_classes[0] == label for image, _, label in held_out)
    assert correct / len(held_out) >= 0.9


def test_gradcam_points_at_the_object_and_counterfactuals_do_not(trained):
    model, held_out = trained
    hits = counter_hits = 0
    for image, box, label in held_out:
        explanation = explain(model, image, top_k=2)
        hits += inside(peak(explanation.cam(label, 4)), box)
        counter = explanation.cam(label, 4, counterfactual=True)
        counter_hits += counter.any() and inside(peak(counter), box)
    rate, counter_rate = hits / len(held_out), counter_hits / len(held_out)
    print(f"pointing game at layer4: {rate:.0%} of {len(held_out)} held-out images; counterfactual peaks on the object: {counter_rate:.0%}")
    assert rate >= 0.9
    assert counter_rate <= 0.1
