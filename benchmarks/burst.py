#!/usr/bin/env python
"""A class picks ten different models at once: ten gradio_client calls to /explain together.

    python benchmarks/burst.py                      # the working tree, default model memory budget
    python benchmarks/burst.py --revision main      # the same burst against another revision
    GRADCAM_MODEL_MEMORY_MB=1500 python benchmarks/burst.py   # another budget

The app runs as ``python app.py`` in its own process with GRADCAM_WEIGHTS=random (offline here;
memory does not depend on the weights' values). Every client connects first; a barrier then
releases all of them at once, each with its own photo and its own model. A thread samples the
app's resident size (psutil) every 50 ms, through the burst and the background completions that
follow it, until the app's CPU has been quiet for a while.

Reported: the app's RSS before, its peak, and after; the time until the last request was served;
served and failed. Target with the default budget: peak ≤ 3.5 GB, all ten served, none failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, checkout, fresh_photo, loadavg, machine_line, served_app  # noqa: E402

MODELS = (
    "vgg16_bn", "vit_b_16", "wide_resnet50_2", "resnet152", "efficientnet_v2_s",
    "convnext_tiny", "swin_t", "maxvit_t", "densenet121", "resnet101",
)  # fmt: skip
TARGET_PEAK_GB = 3.5
SAMPLE_S = 0.05
#: After the last answer, sampling goes on until the app used under 10% of a core for this long.
QUIET_S = 3.0
SETTLE_LIMIT_S = 300.0
CLIENT_TIMEOUT_S = 900.0


class RssSampler(threading.Thread):
    """Samples a process's resident size until stopped; keeps the peak."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.peak = process.memory_info().rss
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.wait(SAMPLE_S):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self._finished.set()
        self.join()
        return self.peak


def wait_until_quiet(process: psutil.Process) -> None:
    """Until the app's background completions have ended: its CPU stays near idle for QUIET_S."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    quiet_since = time.monotonic()
    process.cpu_percent()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if process.cpu_percent() > 10:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revision", metavar="REV", help="serve git revision REV (a temporary worktree) instead of the working tree")
    parser.add_argument("--long-side", type=int, default=1024, help="each photo's longer side in pixels (default 1024)")
    args = parser.parse_args(argv)

    from gradio_client import Client, handle_file

    budget = os.environ.get("GRADCAM_MODEL_MEMORY_MB", "(default)")
    print(f"Burst benchmark{' of ' + args.revision if args.revision else ''}: {len(MODELS)} models at once, GRADCAM_MODEL_MEMORY_MB={budget}")
    print(machine_line())
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="gradcam-burst-"))
        root = stack.enter_context(checkout(args.revision)) if args.revision else ROOT
        url = stack.enter_context(served_app(env={"GRADCAM_WEIGHTS": "random"}, root=root))
        (app,) = psutil.Process().children()
        photos = []
        for n in range(len(MODELS)):
            photos.append(os.path.join(tmp, f"student-{n}.jpg"))
            fresh_photo(7000 + n, args.long_side).save(photos[-1], quality=90)
        # gradio_client's 20 s timeout is too short for a two-core machine under a burst.
        clients = [
            Client(url, verbose=False, download_files=os.path.join(tmp, f"c{n}"), httpx_kwargs={"timeout": CLIENT_TIMEOUT_S})
            for n in range(len(MODELS))
        ]
        wait_until_quiet(app)
        before = app.memory_info().rss
        barrier = threading.Barrier(len(MODELS) + 1)
        waits: dict[str, float] = {}
        errors: list[str] = []
        started = [0.0]

        def student(n: int) -> None:
            barrier.wait()
            try:
                result = clients[n].predict(handle_file(photos[n]), MODELS[n], 4, None, 5, api_name="/explain")
                if len(result) != 7 or not all(os.path.exists(p) for p in result[:5]):
                    raise RuntimeError(f"incomplete answer: {result!r}"[:300])
                waits[MODELS[n]] = time.perf_counter() - started[0]
            except Exception as err:  # noqa: BLE001 - counted and printed
                errors.append(f"{MODELS[n]}: {type(err).__name__}: {err}"[:300])

        threads = [threading.Thread(target=student, args=(n,)) for n in range(len(MODELS))]
        for thread in threads:
            thread.start()
        sampler = RssSampler(app)
        sampler.start()
        started[0] = time.perf_counter()
        barrier.wait()
        for thread in threads:
            thread.join(900)
        wait_until_quiet(app)
        peak = sampler.stop()
        after = app.memory_info().rss
        for client in clients:
            client.close()

    gb = 1024**3
    last = max(waits.values()) if waits else float("nan")
    print(f"\nserved {len(waits)} of {len(MODELS)}, failed {len(errors)}")
    for error in errors:
        print(f"  {error}")
    for name, wait in sorted(waits.items(), key=lambda item: item[1]):
        print(f"  {name:<18} served after {wait:6.1f} s")
    print(f"  app RSS: {before / gb:.2f} GB before, peak {peak / gb:.2f} GB, {after / gb:.2f} GB after the background completions")
    print(f"  last request served after {last:.1f} s (measured under load: load average {loadavg()})")
    passed = peak / gb <= TARGET_PEAK_GB and len(waits) == len(MODELS) and not errors
    print(f"  target (peak <= {TARGET_PEAK_GB} GB, all served, none failed): {'PASS' if passed else 'MISS'}")
    print(f"\n| revision | budget | served | failed | RSS before | peak RSS | last served |\n|---|---|---|---|---|---|---|\n"
          f"| {args.revision or 'working tree'} | {budget} | {len(waits)} | {len(errors)} | {before / gb:.2f} GB | {peak / gb:.2f} GB | {last:.1f} s |")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
