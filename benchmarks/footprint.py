#!/usr/bin/env python
"""What each model costs in memory while the page uses it: the figures behind core.footprint.FOOTPRINTS.

    python benchmarks/footprint.py                 # all 17 models, each in a fresh process
    python benchmarks/footprint.py resnet18 vgg16_bn

Per model, in MB:

* parameters: its parameters and buffers (counted exactly);
* folded twin: the new tensors of the bfloat16 twin, whose BatchNorms are folded into its
  convolutions (counted exactly; the float32 twin shares the model's storage);
* pass: how far the process's resident size rose above the loaded model while it built the
  float32 twin and explained a 2:1 picture (the widest input the page sends: 448×224 for most
  models, 768×384 for efficientnet_v2_s, letterboxed 224×224 for ViT and MaxViT) with
  explain(top_k=5, lazy=True), then complete(): the stage activations, the autograd graph of the
  top-k's backward passes and torch's scratch memory.

A bfloat16 pass holds half-size activations and autocast's half-size copies of the weights: for
resnet18 it measured 119 MB against 140 MB in float32 (on this CPU, without native bfloat16, it
takes minutes per model, so it is not measured for all). The float32 figure is used for both.

Each model is measured in a process of its own: memory that glibc keeps after one model would
hide part of the next. The peak is the kernel's high-water mark (VmHWM), reset just before the pass.
Untrained weights: the figures do not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine_line  # noqa: E402

MB = 1024 * 1024
SIZE = (640, 320)  # the page decodes at most 640 px: the model sees 448×224


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure(name: str) -> dict[str, float]:
    """One model, in this process (run it in a fresh one)."""
    import numpy as np
    from PIL import Image

    from core import explain, load_model, model_info
    from core.forward import twin_for

    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))
    model = load_model(name, weights="random")
    own = [*model.parameters(), *model.buffers()]
    figures = {"parameters": _tensor_bytes(own) / MB}
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    before = _status_kb("VmRSS")
    explain(model, picture, top_k=5, lazy=True, precision="float32").complete()
    figures["pass"] = (_status_kb("VmHWM") - before) / 1024
    folded = twin_for(model, model_info(model).input_size, fold=True)
    shared = {t.data_ptr() for t in own}
    figures["folded twin"] = _tensor_bytes(t for t in (*folded._root.parameters(), *folded._root.buffers()) if t.data_ptr() not in shared) / MB
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="default: every model")
    parser.add_argument("--one", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0

    from core.weights import MODELS

    names = args.models or list(MODELS)
    print(machine_line())
    rows = {}
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--one", name], cwd=ROOT, capture_output=True, text=True, check=True)
        rows[name] = row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name}: " + ", ".join(f"{k} {v:.0f} MB" for k, v in row.items()), flush=True)
    print("\n| model | parameters | folded twin | pass |\n|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['parameters']:.0f} | {row['folded twin']:.0f} | {row['pass']:.0f} |")
    print("\nFOOTPRINTS = {")
    for name, row in rows.items():
        print(f'    "{name}": Footprint({row["parameters"]:.0f}, {row["folded twin"]:.0f}, {row["pass"]:.0f}),')
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
