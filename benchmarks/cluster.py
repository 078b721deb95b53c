#!/usr/bin/env python
"""The explainer embedded, and on Ray Serve with one and two replicas, for a class at once.

    python benchmarks/cluster.py                           # 30 and 100 students, resnet50
    python benchmarks/cluster.py --students 30 --model resnet18

Every configuration runs the same function (core.service.Explainer.first: the first view's
piece, then the top-5 at every stage, class by class) on the same pictures:

* embedded: in this process, every request on a thread of its own, the passes ordered by the
  explainer's scheduler (first views before completions; GRADCAM_NETWORK_CONCURRENCY at once);
* Ray, one replica with every core, then two replicas of one core each, on a local
  ``ray.cluster_utils.Cluster`` on this machine, reached as the page reaches them (demo.remote,
  over Serve's HTTP proxy).

First the hop: one request at a time on an idle machine, the time to the first view's piece,
embedded against one replica with the same number of threads; the difference is what the Ray
hop costs (target <= 15 ms). Then each class: all students released at once; per student the
wait for the first view's piece and for the last piece. The page itself is measured by
benchmarks/classroom.py and benchmarks/browser.py.
"""

from __future__ import annotations

import os

# As app.py: idle OpenMP threads sleep instead of spinning (the replicas inherit it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import Stat, fresh_photo, free_port, loadavg, machine_line  # noqa: E402

TOP_K = 5
SIDE = 640
HOP_TARGET_MS = 15.0
HOP_REPEATS = 15

Ask = Callable[[object, str], Iterator[dict]]  # (picture, name) -> the pieces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--long-side", type=int, default=SIDE, help="each picture's longer side, as the page sends it (default 640)")
    args = parser.parse_args(argv)

    import torch

    from core import read_image
    from core.service import Explainer

    cores = os.cpu_count() or 1
    print(f"Cluster benchmark: {args.model}, top-{TOP_K}, {args.long_side} px pictures, classes of {args.students}")
    print(machine_line())
    pictures = [read_image(fresh_photo(7000 + n, args.long_side)) for n in range(max(args.students))]
    rows: list[str] = []
    hop: dict[str, Stat] = {}

    embedded = Explainer("random", preload=(args.model,))
    torch.set_num_threads(cores)
    hop["embedded"] = _sequential(lambda p, name: embedded.first(p, args.model, TOP_K, "float32", "gradcam", 4, SIDE, name), pictures[0])
    for students in args.students:
        ask = lambda p, name: embedded.first(p, args.model, TOP_K, "float32", "gradcam", 4, SIDE, name)  # noqa: E731
        rows.append(_class_row("embedded", students, _at_once(ask, pictures[:students])))
    del embedded

    for replicas in (1, 2):
        with _ray_explainer(args.model, replicas, cores) as remote:
            ask = lambda p, name: remote.first(p, args.model, TOP_K, "float32", "gradcam", 4, SIDE, name)  # noqa: E731
            if replicas == 1:
                hop["ray, 1 replica"] = _sequential(ask, pictures[0])
            for students in args.students:
                rows.append(_class_row(f"Ray, {replicas} replica{'s' * (replicas > 1)}", students, _at_once(ask, pictures[:students])))
            print(f"  retries on the way: {remote.retries}")

    overhead_ms = (hop["ray, 1 replica"].median - hop["embedded"].median) * 1000
    print(f"\nThe hop, one request at a time ({HOP_REPEATS} each, {cores} threads each), time to the first view's piece:")
    for name, stat in hop.items():
        print(f"  {name}: median {stat.median * 1000:.0f} ms (IQR {stat.iqr * 1000:.0f} ms)")
    verdict = "PASS" if overhead_ms <= HOP_TARGET_MS else "MISS"
    print(f"  Ray's overhead per first view: {overhead_ms:+.0f} ms (target <= {HOP_TARGET_MS:.0f} ms): {verdict}")
    print("\n| configuration | students | first view median | p90 | last first view | last piece | failed |\n|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nload average at end {loadavg()}")
    return 0


def _sequential(ask: Ask, picture) -> Stat:
    times = []
    for n in range(HOP_REPEATS + 2):
        started = time.perf_counter()
        pieces = ask(picture, f"hop-{n}-{time.time_ns()}")
        next(pieces)
        times.append(time.perf_counter() - started)
        for _ in pieces:  # the completion, outside the timing, so the next request starts idle
            pass
    return Stat(times[2:])  # two warm-ups: the twin's trace, the first allocation


def _at_once(ask: Ask, pictures: list) -> tuple[list[float | None], list[float | None], list[str]]:
    """Every student's request released at the same instant: waits to the first piece and the last."""
    students = len(pictures)
    barrier = threading.Barrier(students + 1)
    first: list[float | None] = [None] * students
    last: list[float | None] = [None] * students
    errors: list[str] = []
    started = [0.0]

    def student(n: int) -> None:
        barrier.wait()
        try:
            pieces = list(_timed(ask(pictures[n], f"student-{n}-{time.time_ns()}"), lambda: first.__setitem__(n, time.perf_counter() - started[0])))
            if len(pieces) != 1 + TOP_K:
                raise RuntimeError(f"{len(pieces)} pieces")
            last[n] = time.perf_counter() - started[0]
        except Exception as err:  # noqa: BLE001 - counted and printed
            errors.append(f"student {n}: {type(err).__name__}: {err}"[:200])

    with ThreadPoolExecutor(students) as pool:
        for n in range(students):
            pool.submit(student, n)
        started[0] = time.perf_counter()
        barrier.wait()
    return first, last, errors


def _timed(pieces: Iterator[dict], on_first: Callable[[], None]) -> Iterator[dict]:
    for n, piece in enumerate(pieces):
        if n == 0:
            on_first()
        yield piece


def _class_row(name: str, students: int, waits: tuple[list[float | None], list[float | None], list[str]]) -> str:
    first, last, errors = waits
    for error in errors[:3]:
        print(f"  {error}")
    served_first = Stat([w for w in first if w is not None])
    served_last = [w for w in last if w is not None]
    row = (f"| {name} | {students} | {served_first.median:.2f} s | {served_first.percentile(90):.2f} s | {max(served_first.times):.2f} s "
           f"| {max(served_last):.2f} s | {len(errors)} |")
    print(row)
    return row


@contextlib.contextmanager
def _ray_explainer(model: str, replicas: int, cores: int):
    """A local cluster with the machine's cores, the explainer on it, and the page's client."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from cluster.deployment import ExplainerDeployment
    from demo.remote import ClusterExplainer

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cores})
    ray.init(address=cluster.address, log_to_driver=False)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        deployment = ExplainerDeployment.options(num_replicas=replicas, ray_actor_options={"num_cpus": cores / replicas})
        serve.run(deployment.bind("random", None, [model]), name="gradcam", route_prefix="/gradcam")
        remote = ClusterExplainer(f"http://127.0.0.1:{port}/gradcam")
        print(f"\nRay: {replicas} replica(s) of {cores / replicas:g} CPU, {model} preloaded")
        yield remote
        remote.close()
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main())
