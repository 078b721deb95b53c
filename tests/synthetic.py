"""Synthetic scenes with a known object, and narrow ResNets trained on them once per session.

A red disc (class 0) or a blue square (class 1) on a cluttered background: the object's box is
where a faithful map must point. Shared by the semantic and faithfulness tests, trained once.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from core.intake import to_model_input
from core.weights import IMAGENET_MEAN, IMAGENET_STD
from tests.models import tiny_resnet

SIZE = 224
SHAPE = 56

Box = tuple[int, int, int, int]


def scene(rng: np.random.Generator, label: int) -> tuple[Image.Image, Box]:
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


@functools.lru_cache(maxsize=1)
def trained_on_scenes() -> tuple[nn.Module, list[tuple[Image.Image, Box, int]]]:
    """The tiny ResNet trained on 192 scenes, and 40 held-out (image, box, label); never to be modified."""
    return _trained(tiny_resnet(num_classes=2, seed=0))


@functools.lru_cache(maxsize=1)
def deeper_trained_on_scenes() -> tuple[nn.Module, list[tuple[Image.Image, Box, int]]]:
    """A deeper ResNet (widths 16-32-64-128, two blocks in each of the first three stages, one in
    layer4) trained the same way on the same scenes; the same 40 held-out scenes. Never to be modified.

    For the sanity check (tests/test_sanity.py): on the one-block network, randomising layer4
    already changes guided backprop's fine pattern as much as Grad-CAM's map; with deeper stages
    below layer4, guided backprop ignores the top of the network as the paper found.
    """
    return _trained(tiny_resnet(num_classes=2, widths=(16, 32, 64, 128), seed=0, blocks=(2, 2, 2, 1)))


def _trained(model: nn.Module) -> tuple[nn.Module, list[tuple[Image.Image, Box, int]]]:
    """Trains the model on 192 scenes (6 epochs of Adam); returns it in eval mode with 40 held-out scenes."""
    rng = np.random.default_rng(0)
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
