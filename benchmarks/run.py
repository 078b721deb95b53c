#!/usr/bin/env python
"""Speed and memory benchmark of the Grad-CAM explorer against pytorch-grad-cam, captum and torchcam.

    python benchmarks/run.py                  # full run (several minutes on 2 cores)
    python benchmarks/run.py --markdown       # ... and the table of docs/performance.md at the end
    python benchmarks/run.py --smoke          # one repetition, resnet18, tiny image: checks that it runs
    python benchmarks/run.py --sections 2,3   # only those sections (numbers or names)
    python benchmarks/run.py --profile        # ... and where the time of a first view and a switch goes

One process, torch.set_num_threads(2), random-init torchvision models in eval mode (the app runs
offline here, so it serves untrained weights too: speed does not depend on the weights).

Timing method: within each repetition every implementation runs once, in an order rotated from
one repetition to the next, so drift of a shared, noisy machine hits all of them alike. One
untimed warm-up repetition comes first. Medians and IQRs are over the timed repetitions; ratios
are median(anchor) / median(ours), with the median of the per-repetition ratios beside them.

Sections (each a module of benchmarks/sections/ with one entry point, ``measure(run)``)
  1. full_panel:  top-5 predictions, Grad-CAM at layer1..layer4 for each of the 5 classes (20 maps)
                  and guided backprop for each of the 5 classes, ours vs. each library used as its docs show.
  2. first_view:  decoded 512 px image -> explain(lazy=True) -> the four rendered panels.
  3. switch:      on a complete()d explanation, the panels for another layer or class.
  4. end_to_end:  the app served in this process, called through gradio_client's /explain.
  5. memory:      peak RSS of fresh processes: the app with resnet18 and resnet50, in all and above a
                  process that only imported torch, torchvision and gradio; the three largest models.
  6. cam_methods: benchmarks/methods.py's one-map-per-method comparison, in this same run.
  7. families:    section 1 for one model of every other family.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Before anything imports gradio or torchvision: common sets the offline switches.
from common import cpu_name, loadavg  # noqa: E402
from harness import THREADS, Run  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402

torch.set_num_threads(THREADS)

from sections import cam_methods, end_to_end, families, first_view, full_panel, memory, profile, switch  # noqa: E402

SECTIONS = {module.NUMBER: module for module in (full_panel, first_view, switch, end_to_end, memory, cam_methods, families)}


def machine() -> str:
    import captum
    import torchcam

    try:
        from importlib.metadata import version
        pgc = version("grad-cam")
    except Exception:  # noqa: BLE001
        pgc = "?"
    try:
        import gradio
        gradio_version = gradio.__version__
    except Exception:  # noqa: BLE001
        gradio_version = "?"
    return (
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; load average {loadavg()}\n"
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"torchvision {torchvision.__version__}, gradio {gradio_version}, captum {captum.__version__}, "
        f"grad-cam {pgc}, torchcam {torchcam.__version__}"
    )


def chosen_sections(spec: str) -> set[int]:
    """The section numbers named in ``--sections``, by number ("2") or module name ("first_view")."""
    by_name = {module.__name__.rsplit(".", 1)[-1]: number for number, module in SECTIONS.items()}
    chosen = set()
    for part in (p.strip() for p in spec.split(",")):
        if part.isdigit() and int(part) in SECTIONS:
            chosen.add(int(part))
        elif part in by_name:
            chosen.add(by_name[part])
        elif part:
            raise SystemExit(f"unknown section {part!r}: choose from {', '.join(f'{n} ({name})' for name, n in by_name.items())}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per section (default 7)")
    parser.add_argument("--smoke", action="store_true", help="1 repetition, resnet18, 64x64 image: checks that it runs")
    parser.add_argument("--markdown", action="store_true", help="print the table of docs/performance.md at the end")
    parser.add_argument("--threads", type=int, default=None, help=f"torch threads (default {THREADS}, the targets' setting; 1 in --smoke)")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7", help="comma-separated sections to run, by number or name (default all)")
    parser.add_argument("--profile", action="store_true", help="also profile a resnet50 first view and cached switch")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--largest-memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is None:
        # One thread in --smoke: on a shared 2-core machine two OpenMP threads can stall for
        # scheduler ticks in every parallel region, and the smoke run must stay short.
        args.threads = 1 if args.smoke else THREADS
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory.app_child()
        return 0
    if args.largest_memory_child:
        memory.largest_child()
        return 0
    chosen = chosen_sections(args.sections)

    started = time.perf_counter()
    run = Run(smoke=args.smoke, reps=1 if args.smoke else max(1, args.reps), threads=args.threads)
    mode = "smoke: 1 rep, no warm-up, top-2, resnet18, 1 thread; figures not meaningful" if args.smoke else f"{run.reps} reps + 1 warm-up"
    info = machine()
    print("Grad-CAM explorer benchmark (" + mode + ")")
    print(info)

    for number, section in SECTIONS.items():
        if number in chosen:
            section.measure(run)
        else:
            print(f"\n== {number}. {section.TITLE}: skipped (--sections)")
    if args.profile:
        profile.measure(run)

    report = run.report
    print(f"\n== Targets (resnet50, {THREADS} threads)" + ("" if args.threads == THREADS else f": not checked at --threads {args.threads}"))
    for name, passed, margin in report.verdicts:
        print(f"  {'PASS' if passed else 'MISS'}  {name}: {margin}")
    if not report.verdicts:
        print("  (none checked in --smoke)")
    print(f"\nload average at end {loadavg()}; total {time.perf_counter() - started:.0f} s")
    if args.markdown:
        print()
        print(report.markdown(f"Machine: {info.replace(chr(10), '; ')}. {mode}; medians."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
