"""Section 3: a cached switch, the panels of another layer or class of a completed explanation."""

from __future__ import annotations

from harness import Run, random_model, report_resnet50_target

import core
from core.views import panels

NUMBER, TITLE = 3, "Cached switch"

TARGET_SWITCH_MS = 30.0  # resnet50, 2 threads


def measure(run: Run) -> None:
    image = run.view_image()
    print(f"\n== 3. Cached switch: complete()d explanation of a {image.size[0]}x{image.size[1]} image -> panels(...) for another layer / class")
    impls = {}
    for name in run.models:
        explanation = core.explain(random_model(name), image, top_k=run.top_k, lazy=True).complete()
        classes = explanation.top_classes
        counter = {"layer": 0, "class": 0}

        def layer_change(e=explanation, counter=counter):
            counter["layer"] += 1
            return panels(e, e.top_classes[0], 1 + counter["layer"] % 3)  # layer1..3

        def class_change(e=explanation, counter=counter, classes=classes):
            counter["class"] += 1
            return panels(e, classes[1 + counter["class"] % (len(classes) - 1)], 4)

        impls[f"{name} layer change"] = layer_change
        impls[f"{name} class change"] = class_change
    stats, _ = run.interleaved(impls)
    report_resnet50_target(run, "3 Cached switch", stats, TARGET_SWITCH_MS, "cached switch", 22, digits=1)
