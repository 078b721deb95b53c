"""``run.py --profile``: where a resnet50 first view and a cached switch spend their time."""

from __future__ import annotations

import cProfile
import io
import pstats

from harness import Run, random_model
from sections.first_view import first_view

from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

import core
from core.views import panels


def measure(run: Run) -> None:
    """torch.profiler's op table for a first view, then cProfile of a first view and two switches."""
    image, k = run.view_image(), run.top_k
    print("\n== Profile (resnet50)")
    model = random_model("resnet50")
    first_view(model, image, k)  # warm: twin built
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        first_view(model, image, k)
    print("-- first view, torch ops by self CPU time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    explanation = core.explain(model, image, top_k=k, lazy=True).complete()
    for title, fn in (
        ("first view", lambda: first_view(model, image, k)),
        ("cached layer switch", lambda: panels(explanation, explanation.top_classes[0], 2)),
        ("cached class switch", lambda: panels(explanation, explanation.top_classes[1], 4)),
    ):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(3):
            fn()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
        print(f"-- {title}, cProfile x3 by own time")
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
