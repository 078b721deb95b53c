#!/usr/bin/env python
"""What this machine allows a first view, whatever the page does: bare torchvision beside our passes.

    python benchmarks/floor.py            # 7 repetitions per picture
    python benchmarks/floor.py --smoke    # 1 repetition of the example (CI)

One process, untrained resnet50, float32, the app's OMP_WAIT_POLICY, at the model inputs that the
browser benchmark's two pictures make (``benchmarks/browser.py``). Interleaved per repetition:

  bare forward        torchvision's resnet50 in inference mode: before it ends no page anywhere
                      can show a class's heatmap
  bare fwd + bwd      a forward pass with a graph and one backward pass to the input, parameters
                      frozen: the least that guided backprop (two of the five panels) costs
  our first pass      explain(lazy=True, top_class_guided=False): what the page's first view runs
  our lead            Explanation.lead() after it: the top class's guided map and stages

Issue 16's targets for upload → five panels drawn (450 ms for the example, 600 ms for the photo)
include the upload, Gradio's round trip and the page's drawing; the "bare fwd + bwd" line is
what the network alone needs of that budget on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py; read when torch loads OpenMP
os.environ.setdefault("GRADCAM_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch  # noqa: E402
import torchvision  # noqa: E402
from common import asset, interleaved, machine_line, photo, variant  # noqa: E402

from core import explain, load_model, read_image  # noqa: E402

#: Upload → five panels drawn, in ms (issue 16), per picture.
TARGETS = {"512×256 example": 450, "4032×3024 photo": 600}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="1 repetition of the example, no warm-up")
    args = parser.parse_args(argv)
    reps, warmup = (1, 0) if args.smoke else (args.reps, 1)
    pictures = {"512×256 example": asset("lion_and_cheetah.jpg")}
    if not args.smoke:
        pictures["4032×3024 photo"] = photo(4032, 3024)
    print(f"Floor of a first view, resnet50 float32, {reps} repetitions\n{machine_line()}\n")
    ours = load_model("resnet50", weights="random")
    bare = torchvision.models.resnet50().eval().requires_grad_(False)
    for name, picture in pictures.items():
        # Read before the clocks start (a 4032×3024 picture takes longer to shrink than a pass);
        # a new variant per pass, so never a cache hit.
        variants = [read_image(variant(picture, n), max_side=640) for n in range(2 * (reps + warmup) + 1)]
        fresh = variants.pop
        x = explain(ours, fresh(), top_k=5, lazy=True, top_class_guided=False).input_tensor  # builds the twin

        def bare_forward() -> None:
            with torch.inference_mode():
                bare(x)

        def bare_backward() -> None:
            inputs = x.clone().requires_grad_(True)
            torch.autograd.grad(bare(inputs)[0, 0], inputs)

        def first_pass():
            return explain(ours, fresh(), top_k=5, lazy=True, top_class_guided=False)

        stats, _ = interleaved({"bare forward": bare_forward, "bare fwd + bwd": bare_backward, "our first pass": first_pass}, reps, warmup)
        waiting = [first_pass() for _ in range(reps + warmup)]  # first passes outside the clock
        lead_stats, _ = interleaved({"our lead": lambda: waiting.pop().lead()}, reps, warmup)
        print(f"{name}: model input {tuple(x.shape[-2:])} (height, width)")
        for label, stat in {**stats, **lead_stats}.items():
            print(f"  {label:34s} {stat.ms()}")
        forward, backward = stats["bare forward"].median, stats["bare fwd + bwd"].median
        print(f"  our first pass / bare forward: {stats['our first pass'].median / forward:.2f}x")
        print(f"  bare fwd + bwd: {backward * 1e3:.0f} ms of the {TARGETS[name]} ms target for upload -> five panels ({backward * 1e3 / TARGETS[name]:.0%})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
