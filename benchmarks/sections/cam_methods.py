"""Section 6: benchmarks/methods.py's measurement in this run, one map per CAM method vs pytorch-grad-cam."""

from __future__ import annotations

from common import Stat
from harness import Run

NUMBER, TITLE = 6, "CAM methods"


def measure(run: Run) -> None:
    import methods

    model_name = "resnet18" if run.smoke else "resnet50"
    print(f"\n== 6. CAM methods: one {model_name} layer4 map on a completed Explanation vs pytorch-grad-cam's own call")
    # pytorch-grad-cam's Score-CAM and Ablation-CAM perturb every channel: minutes, skipped in --smoke.
    rows = methods.measure(model_name, run.reps, 0 if run.smoke else 1, 4, warmup=not run.smoke)
    for method, ours, theirs in rows:
        mine = Stat(ours)
        if not theirs:
            print(f"  {method:12s} ours {mine.ms()}   pytorch-grad-cam not run in --smoke")
            run.report.row("6 CAM methods", f"{model_name} 224x224 layer4 {method}: ours / pytorch-grad-cam", f"{mine.median * 1e3:.1f} ms / not run")
            continue
        other = Stat(theirs)
        ratio = other.median / mine.median
        print(f"  {method:12s} ours {mine.ms()}   pytorch-grad-cam {other.median * 1e3:9.1f} ms (n={len(theirs)})   ratio {ratio:.0f}x")
        run.report.row("6 CAM methods", f"{model_name} 224x224 layer4 {method}: ours / pytorch-grad-cam",
                       f"{mine.median * 1e3:.1f} ms / {other.median * 1e3:.0f} ms = {ratio:.0f}x")
