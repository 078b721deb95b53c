"""Section 2: a first view, from a decoded picture to the four rendered panels of the top class."""

from __future__ import annotations

from harness import Run, random_model, report_resnet50_target

import torch
from PIL import Image

import core
from core.views import panels

NUMBER, TITLE = 2, "First view"

TARGET_FIRST_VIEW_MS = 150.0  # resnet50, 2 threads


def first_view(model: torch.nn.Module, image: Image.Image, top_k: int, precision: str = "float32"):
    explanation = core.explain(model, image, top_k=top_k, lazy=True, precision=precision)
    return panels(explanation, explanation.top_classes[0], 4)


def measure(run: Run) -> None:
    image = run.view_image()
    print(f"\n== 2. First view: decoded {image.size[0]}x{image.size[1]} PIL image -> explain(lazy=True) -> panels(top class, layer 4)")
    precisions = ["float32", "bfloat16"] if core.native_bfloat16() else ["float32"]  # bfloat16: the page's, where native
    models = {name: random_model(name) for name in run.models}
    impls = {f"{name} {p}": (lambda m=m, p=p: first_view(m, image, run.top_k, p)) for name, m in models.items() for p in precisions}
    stats, _ = run.interleaved(impls)
    report_resnet50_target(run, "2 First view", stats, TARGET_FIRST_VIEW_MS, "first view", 18)
