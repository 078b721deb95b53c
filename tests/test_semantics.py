"""Does the map point at the evidence? A narrow ResNet learns, inside the test, to tell a red disc
from a blue square on a cluttered background; Grad-CAM at layer4 must then find the object."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.engine import explain
from core.intake import to_model_input
from core.weights import IMAGENET_MEAN, IMAGENET_STD
from tests.models import tiny_resnet

SIZE = 224
SHAPE = 56


def scene(rng: np.random.Generator, label: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Clutter of small random-coloured specks, and one object: class 0 a red disc, class 1 a blue square."""
    picture = Image.fromarray(rng.integers(90, 160, size=(SIZE, SIZE, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(25):
        x, y = rng.integers(0, SIZE - 8, size=2)
        draw.rectangle([x, y, x + 6, y + 6], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    left, top = (int(v) for v in rng.integers(0, SIZE - SHAPE, size=2))
    box = (left, top, left + SHAPE, top + SHAPE)
    if label == 0:
        draw.ellipse(box, fill=(220, 30, 30))
    else:
        draw.rectangle(box, fill=(30, 30, 220))
    return picture, box


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    model = tiny_resnet(num_classes=2, seed=0)
    labels = torch.tensor([i % 2 for i in range(192)])
    images = torch.cat([to_model_input(scene(rng, int(c))[0], IMAGENET_MEAN, IMAGENET_STD) for c in labels])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(6):
        for batch in torch.randperm(len(labels)).split(32):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimiser.step()
    model.eval()
    model.zero_grad(set_to_none=True)
    held_out = [(*scene(rng, i % 2), i % 2) for i in range(40)]
    return model, held_out


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
