#!/usr/bin/env python
"""What one first view costs the server now that the page draws: CPU and bytes.

    python benchmarks/first_view.py                 # this tree
    python benchmarks/first_view.py --baseline REV  # and the page before it (git revision REV)

In one process per tree, untrained resnet50 on variants of the 512×256 example (each a cache
miss), top-5, the page's default precision. Per upload it times, in process CPU seconds
(``time.process_time``: every thread of the process), the handlers a first view runs:

  this tree   Explorer.on_new_input (one pass, the payload of the top class: five panels and
              the strip for the page to draw); the payload's bytes as sent (JSON), and the bytes
              of each later class the background completion sends on
  before      Explorer.new_input_steps (one pass, five PNG panels) + Explorer.on_depth (the
              layer1..layer4 strip as four PNGs), as the page before this tree ran them

Between uploads the background completion is joined outside the clock, so its pass is not
counted in either.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, asset, checkout, machine_line, variant  # noqa: E402

SETTINGS = dict(colormap="jet", opacity=0.5, counterfactual=False)


def measure_here(reps: int, root: str) -> dict:
    """Runs in the tree being measured (its own process): CPU per first view, and the bytes sent."""
    sys.path[:] = [root] + [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    folder = Path(tempfile.mkdtemp(prefix="gradcam-first-view-"))
    paths = []
    for n in range(reps + 1):
        paths.append(str(folder / f"upload-{n}.jpg"))
        variant(asset("lion_and_cheetah.jpg"), n).save(paths[-1], quality=92)
    try:
        from demo.explore import Explorer

        explorer, new = Explorer(), True
    except ImportError:  # the page before it drew: demo.ui held the Explorer
        from demo.ui import Explorer

        explorer, new = Explorer(), False
    cpu, first_bytes, later_bytes = [], [], []  # bytes: the payload as JSON, or the PNG files
    for n, path in enumerate(paths):
        started = time.process_time()
        if new:
            payload = explorer.on_new_input(path, "resnet50", 5, "gradcam")[0]
        else:
            steps = list(explorer.new_input_steps(path, "resnet50", 4, 5, **SETTINGS))
        spent = time.process_time() - started
        explorer.completer.join(300)
        if not new:  # the strip's own event, after the completion as the page waited for it
            started = time.process_time()
            strip = explorer.on_depth(path, "resnet50", None, 5, **SETTINGS)
            spent += time.process_time() - started
        if n:  # the first upload builds the model's twin
            cpu.append(spent)
            if new:
                first_bytes.append(len(json.dumps(payload)))
                later_bytes.extend(len(json.dumps(piece)) for piece in explorer.on_rest(path, "resnet50", 5, "gradcam"))
            else:
                files = [v["value"] if isinstance(v, dict) else v for step in steps for v in step[:5] if v and v != {"__type__": "update"}]
                files = [f for f in files if isinstance(f, str)] + [f for f, _ in strip]
                first_bytes.append(sum(os.path.getsize(f) for f in files))
    return {"cpu": cpu, "first_bytes": first_bytes, "later_bytes": later_bytes}


def run_tree(root: Path, reps: int) -> dict:
    code = f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import first_view; print(json.dumps(first_view.measure_here({reps}, {str(root)!r})))"
    # As app.py runs: idle OpenMP threads sleep rather than spin and count as CPU.
    env = {**os.environ, "GRADCAM_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV (the page before it drew)")
    args = parser.parse_args(argv)
    print(machine_line())
    trees = {"this tree": ROOT}
    with checkout(args.baseline) if args.baseline else tempfile.TemporaryDirectory() as other:
        if args.baseline:
            trees[f"before ({args.baseline})"] = Path(other)
        results = {name: run_tree(root, args.reps) for name, root in trees.items()}
    for name, result in results.items():
        print(f"{name}: CPU per first view, median {statistics.median(result['cpu']) * 1e3:.0f} ms (min {min(result['cpu']) * 1e3:.0f}) over {len(result['cpu'])}")
        later = f"; each later class {statistics.median(result['later_bytes']) / 1024:.0f} KB" if result["later_bytes"] else " (five panels and four strip PNGs)"
        print(f"  bytes of a first view: {statistics.median(result['first_bytes']) / 1024:.0f} KB{later}")
    if args.baseline:
        now, before = (statistics.median(results[name]["cpu"]) for name in trees)
        print(f"CPU per first view, this tree / before: {now / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
