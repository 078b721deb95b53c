#!/usr/bin/env python
"""Time for one CAM map, per method: ours on a completed Explanation vs pytorch-grad-cam's.

    python benchmarks/methods.py            # resnet50, 224×224, 5 reps (pgc's Score/Ablation-CAM: 1)
    python benchmarks/methods.py --smoke    # resnet18, 1 rep: checks that it runs

benchmarks/run.py runs the same measurement as its section 6, so docs/performance.md's table holds these
rows from the same run as the others.

Random-init torchvision ResNet in eval mode, torch.set_num_threads(2), class = the top class,
layer4 unless --layer says otherwise.

* Ours: ``explanation.cam(class, layer, method=m)`` (upsampled to the image and scaled to [0, 1])
  on an Explanation that already holds its first pass, as a page switching methods would call it.
  A fresh Explanation is made, untimed, before every timed call, so the cached perturbation
  methods are timed computing, not looking up.
* pytorch-grad-cam: one call of a CAM object built (untimed) as its docs show,
  ``cam(input_tensor=x, targets=[ClassifierOutputTarget(c)])``: its own forward (and backward)
  pass, then the map, scaled and resized the same way. Its Score-CAM and Ablation-CAM perturb
  every channel (2048 forward passes at resnet50's layer4, minutes each), so they run
  --pgc-perturbation-reps times (default 1). Ours cap the channels (see core.methods).

Reps are interleaved: each rep times every method once, ours and pgc back to back in an order
that alternates, so drift of a shared machine hits both alike. Medians; ratio = pgc / ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ["GRADCAM_OFFLINE"] = "1"
os.environ["TQDM_DISABLE"] = "1"  # pgc's perturbation methods draw progress bars

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from pytorch_grad_cam import (  # noqa: E402
    AblationCAM,
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

THREADS = 2  # set in main(): benchmarks/run.py imports this module at its own thread count

from core import METHODS, explain  # noqa: E402
from core.methods import PERTURBATION_METHODS  # noqa: E402

PGC = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "hirescam": HiResCAM,
    "scorecam": ScoreCAM,
    "ablationcam": AblationCAM,
    "eigencam": EigenCAM,
}


def sample_image(size: int = 224, seed: int = 0) -> Image.Image:
    """Smooth random colour blobs: a natural-ish picture without any asset."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8))
    return coarse.resize((size, size), Image.Resampling.BICUBIC)


def time_ours(model: torch.nn.Module, image: Image.Image, method: str, layer: int) -> float:
    explanation = explain(model, image, top_k=1)
    c = explanation.top_classes[0]
    started = time.perf_counter()
    explanation.cam(c, layer, method=method)
    return time.perf_counter() - started


def time_pgc(model: torch.nn.Module, x: torch.Tensor, c: int, method: str, layer: int) -> float:
    with PGC[method](model, target_layers=[getattr(model, f"layer{layer}")]) as cam:
        started = time.perf_counter()
        cam(input_tensor=x, targets=[ClassifierOutputTarget(c)])
        return time.perf_counter() - started


def measure(name: str, reps: int, pgc_perturbation_reps: int = 1, layer: int = 4, *, warmup: bool = True, size: int = 224) -> list[tuple[str, list[float], list[float]]]:
    """(method, our times, pytorch-grad-cam's times) in seconds, for one map per method."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    image = sample_image(size)
    first = explain(model, image, top_k=1)
    x, c = first.input_tensor, first.top_classes[0]

    if warmup:  # one untimed call each (pgc's slow perturbation methods excepted)
        for method in METHODS:
            time_ours(model, image, method, layer)
            if method not in PERTURBATION_METHODS:
                time_pgc(model, x, c, method, layer)

    ours: dict[str, list[float]] = {m: [] for m in METHODS}
    pgc: dict[str, list[float]] = {m: [] for m in METHODS}
    for rep in range(reps):
        for method in METHODS:
            run_pgc = method not in PERTURBATION_METHODS or rep < pgc_perturbation_reps
            timers = [lambda: ours[method].append(time_ours(model, image, method, layer))]
            if run_pgc:
                timers.append(lambda: pgc[method].append(time_pgc(model, x, c, method, layer)))
            for timer in timers if rep % 2 == 0 else timers[::-1]:
                timer()
        print(f"rep {rep + 1}/{reps} done", file=sys.stderr, flush=True)
    return [(method, ours[method], pgc[method]) for method in METHODS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="resnet18, 1 rep, no warm-up")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--pgc-perturbation-reps", type=int, default=1)
    parser.add_argument("--layer", type=int, default=4, choices=(1, 2, 3, 4))
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    name = "resnet18" if args.smoke else "resnet50"
    reps = 1 if args.smoke else args.reps
    rows = measure(name, reps, args.pgc_perturbation_reps, args.layer, warmup=not args.smoke)

    print(f"\n{name}, 224×224, layer{args.layer}, {THREADS} threads, torch {torch.__version__}: one map, median of n reps\n")
    print("| method | ours (ms) | pytorch-grad-cam (ms) | pgc / ours | n (ours, pgc) |")
    print("|---|---:|---:|---:|---|")
    for method, mine_times, theirs_times in rows:
        mine, theirs = statistics.median(mine_times), statistics.median(theirs_times)
        print(f"| {method} | {mine * 1e3:.1f} | {theirs * 1e3:.1f} | {theirs / mine:.1f}× | {len(mine_times)}, {len(theirs_times)} |")


if __name__ == "__main__":
    main()
