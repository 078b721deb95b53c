"""Section 5: memory, measured in fresh processes (``run.py --memory-child`` and ``--largest-memory-child``).

5.  The app built, resnet18 and resnet50 loaded and one completed explanation each: peak RSS, in
    all and above a fresh process that only imported torch, torchvision and gradio.
5b. The three largest models of the dropdown loaded and each explained: peak RSS in all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from common import ROOT, check_at_most, launch_app, peak_rss, photo
from harness import Report, Run

import torch

import core
from core.views import panels

NUMBER, TITLE = 5, "Memory"

#: The children start run.py again, which sets threads and the offline switches as for the parent.
RUNNER = Path(__file__).resolve().parent.parent / "run.py"
TOP_K = 5  # the page's
#: The three largest models of the dropdown by parameter count, for the memory bound.
LARGEST_MODELS = ("vgg16_bn", "vit_b_16", "wide_resnet50_2")
TARGET_RSS_LARGEST_GB = 2.5
#: Peak RSS above a process that only imported torch, torchvision and gradio (the CUDA wheel of
#: torch alone costs ~700 MB of RSS on import, before any model exists).
TARGET_RSS_ABOVE_IMPORTS_MB = 900.0


def measure(run: Run) -> None:
    if run.smoke:
        print("\n== 5. Memory: skipped in --smoke (it starts a second process and loads resnet50)")
        return
    app_with_two_models(run.report)
    largest_models(run.report)


def app_child() -> None:
    """Runs in a fresh process: app + resnet18 + resnet50 + one explanation each; prints JSON."""
    import psutil

    process = psutil.Process()
    marks = {"start": process.memory_info().rss}
    demo = launch_app()
    marks["app built + launched (resnet50 loaded)"] = process.memory_info().rss
    shelf = demo.explorer.shelf
    models = {name: shelf.get(name) for name in ("resnet18", "resnet50")}
    marks["resnet18 + resnet50 loaded"] = process.memory_info().rss
    image = photo(640, 427)
    kept = []
    for name, model in models.items():
        explanation = core.explain(model, image, top_k=TOP_K, lazy=True)
        panels(explanation, explanation.top_classes[0], 4)
        explanation.complete()
        panels(explanation, explanation.top_classes[1], 1)
        kept.append(explanation)
    marks["after one completed explanation each (640x427)"] = process.memory_info().rss
    demo.close()
    print(json.dumps({"peak_rss": peak_rss(), "marks": marks}))


def largest_child() -> None:
    """Runs in a fresh process: the three largest models loaded and one completed explanation each."""
    image = photo(640, 427)
    kept = []
    for name in LARGEST_MODELS:
        explanation = core.explain(core.load_model(name, weights="random", device="cpu"), image, top_k=TOP_K)
        panels(explanation, explanation.top_classes[1], 1)
        kept.append(explanation)
    print(json.dumps({"peak_rss": peak_rss(), "models": [len(core.weights.cached_models())]}))


def largest_models(report: Report) -> None:
    print(f"\n== 5b. Memory: fresh process loads {', '.join(LARGEST_MODELS)} and explains a 640x427 image with each (top-{TOP_K}, all stages)")
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--largest-memory-child", "--threads", str(torch.get_num_threads())],
        capture_output=True, text=True, timeout=1200, cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak_gb = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss"] / 1e9
    passed, margin = check_at_most(peak_gb * 1000, TARGET_RSS_LARGEST_GB * 1000, "MB")
    verdict = report.verdict("peak RSS, the three largest models loaded and explained", passed, margin)
    print(f"  peak RSS (VmHWM) {peak_gb:.2f} GB  {verdict}")
    report.row("5 Memory", f"peak RSS in all: {' + '.join(LARGEST_MODELS)}, one complete explanation each", f"{peak_gb:.2f} GB", f"<= {TARGET_RSS_LARGEST_GB} GB", verdict)


BARE_IMPORTS = """
import os
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
import torch, torchvision, gradio
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) * 1024)
"""


def app_with_two_models(report: Report) -> None:
    print("\n== 5. Memory: fresh process builds the app, loads resnet18 + resnet50, explains a 640x427 image with each")
    bare = subprocess.run([sys.executable, "-c", BARE_IMPORTS], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    if bare.returncode != 0:
        raise RuntimeError(f"bare-import child failed ({bare.returncode}):\n{bare.stderr[-3000:]}")
    baseline = int(bare.stdout.split()[-1])
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--memory-child", "--threads", str(torch.get_num_threads())],
        capture_output=True, text=True, timeout=600, cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  RSS {'after only: import torch, torchvision, gradio':48s} {baseline / 2**20:7.0f} MiB  (a separate fresh process: the baseline)")
    for mark, rss in data["marks"].items():
        print(f"  RSS {mark:48s} {rss / 2**20:7.0f} MiB")
    peak, above_mb = data["peak_rss"], (data["peak_rss"] - baseline) / 1e6
    passed, margin = check_at_most(above_mb, TARGET_RSS_ABOVE_IMPORTS_MB, "MB")
    verdict = report.verdict("peak RSS above the bare imports, resnet18 + resnet50", passed, margin)
    print(f"  peak RSS (VmHWM) {peak / 1e9:.2f} GB in all; {above_mb:.0f} MB above the bare imports ({baseline / 1e6:.0f} MB)  {verdict}")
    report.row("5 Memory", "peak RSS above import torch+torchvision+gradio: app + resnet18 + resnet50 + 1 explanation each",
               f"{above_mb:.0f} MB", f"<= {TARGET_RSS_ABOVE_IMPORTS_MB:.0f} MB", verdict)
    report.row("5 Memory", "peak RSS in all (the bare imports alone: " + f"{baseline / 1e6:.0f} MB)", f"{peak / 1e9:.2f} GB")
