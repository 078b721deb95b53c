#!/usr/bin/env python
"""What each server-side lever of the page saves, step by step, old way against new way.

    python benchmarks/levers.py            # 15 repetitions, resnet50
    python benchmarks/levers.py --smoke    # 2 repetitions: checks that it runs

Each lever is one step of a first view or a switch, timed the way it was done before and the way
the page does it now, interleaved repetition by repetition. Two clocks: wall time, and the CPU
time of the calling thread (``time.thread_time``), which a shared machine disturbs far less, so
it is the figure to compare when other jobs load the CPU. The levers that change round trips
(streamed steps, one event instead of a chained one, completing in the background) only show in
the browser: see benchmarks/browser.py --baseline.

  decode    a 4032×3024 JPEG upload: full decode then resize to 640 px, vs JPEG draft decode
  render    the five panels of a view: at the upload's 640 px, vs at the page's 384 px
  encode    the five panels: Pillow PNG at zlib level 1, vs OpenCV PNG with Huffman-only deflate
  upsample  a 7×10 layer4 map and the guided gradient to 640×427: torch F.interpolate (what
            core/engine.py does, 2 threads), vs cv2.resize (the same bilinear weights)
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import loadavg, machine_line, photo  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

import core  # noqa: E402
from core.intake import fit_within, read_image  # noqa: E402
from core.render import PNG_PARAMS  # noqa: E402
from core.views import panels  # noqa: E402
from demo.common import DISPLAY_SIDE, PANEL_SIDE  # noqa: E402


def pillow_png(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "png", compress_level=1)
    return buffer.getvalue()


def opencv_png(picture: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), PNG_PARAMS)[1].tobytes()


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    return time.perf_counter() - wall, time.thread_time() - cpu, result


def compare(name: str, old: Callable[[], object], new: Callable[[], object], reps: int, size: Callable[[object], str] | None = None) -> None:
    times = {"old": ([], []), "new": ([], [])}
    results = {}
    for rep in range(reps + 1):  # the first is an untimed warm-up
        for which in ("old", "new") if rep % 2 == 0 else ("new", "old"):
            wall, cpu, results[which] = timed(old if which == "old" else new)
            if rep:
                times[which][0].append(wall)
                times[which][1].append(cpu)
    (old_wall, old_cpu), (new_wall, new_cpu) = ([statistics.median(t) * 1e3 for t in times[w]] for w in ("old", "new"))
    extra = f"   {size(results['old'])} -> {size(results['new'])}" if size else ""
    print(f"  {name:9s} wall {old_wall:7.1f} -> {new_wall:7.1f} ms   thread CPU {old_cpu:7.1f} -> {new_cpu:7.1f} ms   (x{old_cpu / max(new_cpu, 1e-9):.1f} CPU){extra}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    reps = 2 if args.smoke else args.reps
    torch.set_num_threads(2)  # the app's default on two vCPUs
    print(f"Levers, old -> new, medians of {reps} interleaved repetitions")
    print(machine_line())

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "phone.jpg"
        photo(4032, 3024).save(big, quality=92)
        compare("decode", lambda: fit_within(read_image(big), DISPLAY_SIDE), lambda: read_image(big, max_side=DISPLAY_SIDE), reps)

    model = core.load_model("resnet50", weights="random")
    explanation = core.explain(model, photo(640, 427), top_k=5).complete()
    c = explanation.top_classes[1]
    compare("render", lambda: panels(explanation, c, 2), lambda: panels(explanation, c, 2, max_side=PANEL_SIDE), reps)
    full = panels(explanation, c, 2).as_list()
    small = panels(explanation, c, 2, max_side=PANEL_SIDE).as_list()
    kb = lambda files: f"{sum(len(f) for f in files) // 1024} KB"  # noqa: E731
    compare("encode", lambda: [pillow_png(p) for p in full], lambda: [opencv_png(p) for p in full], reps, kb)
    compare("encode384", lambda: [pillow_png(p) for p in full], lambda: [opencv_png(p) for p in small], reps, kb)

    cam = torch.rand(1, 1, 7, 10)
    guided = torch.rand(1, 3, 224, 336)
    cam_np, guided_np = cam[0, 0].numpy(), guided[0].permute(1, 2, 0).contiguous().numpy()
    compare(
        "upsample",
        lambda: (F.interpolate(cam, size=(427, 640), mode="bilinear", align_corners=False), F.interpolate(guided, size=(427, 640), mode="bilinear", align_corners=False)),
        lambda: (cv2.resize(cam_np, (640, 427), interpolation=cv2.INTER_LINEAR), cv2.resize(guided_np, (640, 427), interpolation=cv2.INTER_LINEAR)),
        reps,
    )
    same = np.abs(F.interpolate(cam, size=(427, 640), mode="bilinear", align_corners=False)[0, 0].numpy() - cv2.resize(cam_np, (640, 427), interpolation=cv2.INTER_LINEAR)).max()
    print(f"  upsample: largest difference between the two, on a [0, 1] map: {same:.1e}")
    print(f"\nload average at end {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
