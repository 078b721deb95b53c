"""Helpers shared by the benchmarks: statistics, test pictures, serving the app, machine facts.

Importing this module sets the offline switches before anything imports gradio or torchvision
(no telemetry, no weight downloads: the app serves untrained weights here, and speed does not
depend on the weights).
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["GRADCAM_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("GRADCAM_WEIGHTS", None)
os.environ["TQDM_DISABLE"] = "1"  # pytorch-grad-cam's perturbation methods draw progress bars

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

#: Debian's Chromium: Playwright drives it, as ``playwright install`` cannot download browsers here.
CHROMIUM = "/usr/bin/chromium"
#: Headless, no GPU, and none of the services that would reach the internet.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

ASSETS = ROOT / "assets"
ASSET_NAMES = ("cheetah.jpg", "lion_and_cheetah.jpg", "tower.jpg", "lion.jpg")


# ----------------------------------------------------------------------------- statistics


@dataclass
class Stat:
    times: list[float]  # seconds

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> float:
        if len(self.times) < 2:
            return 0.0
        q1, _, q3 = np.percentile(self.times, [25, 50, 75])
        return float(q3 - q1)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.times, q))

    def ms(self) -> str:
        return f"{self.median * 1e3:8.1f} ms (IQR {self.iqr * 1e3:6.1f}, min {min(self.times) * 1e3:6.1f})"

    def s(self) -> str:
        return f"{self.median:7.3f} s (IQR {self.iqr:6.3f}, min {min(self.times):6.3f})"

    def ms_short(self, digits: int = 0) -> str:
        return f"{self.median * 1e3:.{digits}f} ms (IQR {self.iqr * 1e3:.{digits}f})"


def interleaved(impls: dict[str, Callable[[], Any]], reps: int, warmup: int = 1) -> tuple[dict[str, Stat], dict[str, Any]]:
    """Times every implementation once per repetition, in an order rotated between repetitions.

    Drift of a shared, noisy machine then hits all of them alike. The ``warmup`` repetitions
    come first and are not timed. Returns the times and each implementation's last result.
    """
    names = list(impls)
    times: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, Any] = {}
    for rep in range(-warmup, reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            started = time.perf_counter()
            result = impls[name]()
            elapsed = time.perf_counter() - started
            last[name] = result
            if rep >= 0:
                times[name].append(elapsed)
            del result
    return {name: Stat(t) for name, t in times.items()}, last


def paired_ratio(anchor: Stat, ours: Stat) -> float:
    """The median of the per-repetition ratios anchor / ours."""
    return statistics.median(a / o for a, o in zip(anchor.times, ours.times))


def check_at_most(value: float, limit: float, unit: str) -> tuple[bool, str]:
    passed = value <= limit
    if passed:
        return True, f"{value:.0f} {unit} <= {limit:.0f} {unit}, {limit - value:.0f} {unit} ({(limit - value) / limit:.0%}) to spare"
    return False, f"{value:.0f} {unit} > {limit:.0f} {unit}, {value - limit:.0f} {unit} ({(value - limit) / limit:.0%}) over"


def check_at_least(ratio: float, limit: float) -> tuple[bool, str]:
    if ratio >= limit:
        return True, f"{ratio:.1f}x >= {limit:.0f}x, {ratio / limit - 1:.0%} margin"
    return False, f"{ratio:.1f}x < {limit:.0f}x, {1 - ratio / limit:.0%} short"


# ----------------------------------------------------------------------------- pictures


def asset(name: str) -> Image.Image:
    with Image.open(ASSETS / name) as image:
        return image.convert("RGB")


def photo(width: int, height: int, name: str = "cheetah.jpg") -> Image.Image:
    """An asset photo cropped to the aspect ratio and resized to exactly width×height."""
    image = asset(name)
    w, h = image.size
    target = width / height
    if w / h > target:
        crop_w = round(h * target)
        box = ((w - crop_w) // 2, 0, (w - crop_w) // 2 + crop_w, h)
    else:
        crop_h = round(w / target)
        box = (0, (h - crop_h) // 2, w, (h - crop_h) // 2 + crop_h)
    return image.crop(box).resize((width, height), Image.Resampling.LANCZOS)


def fresh_photo(seed: int, long_side: int = 512) -> Image.Image:
    """A different natural-looking picture for every seed: a random crop of an asset, jittered."""
    rng = np.random.default_rng(seed)
    image = asset(ASSET_NAMES[seed % len(ASSET_NAMES)])
    w, h = image.size
    frac = rng.uniform(0.7, 1.0)
    cw, ch = max(16, int(w * frac)), max(16, int(h * frac))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = image.crop((x0, y0, x0 + cw, y0 + ch))
    scale = long_side / max(cw, ch)
    crop = crop.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.Resampling.LANCZOS)
    pixels = np.asarray(crop, dtype=np.int16) + rng.integers(-2, 3, (crop.height, crop.width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def variant(image: Image.Image, seed: int) -> Image.Image:
    """The same picture with a few pixels nudged: new content (a cache miss), same look and size."""
    rng = np.random.default_rng(seed)
    pixels = np.array(image, dtype=np.uint8)
    ys = rng.integers(0, pixels.shape[0], 16)
    xs = rng.integers(0, pixels.shape[1], 16)
    pixels[ys, xs] ^= 1
    return Image.fromarray(pixels)


# ----------------------------------------------------------------------------- the app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_app():
    """The app served in this process on a free localhost port (as the tests' fixture does)."""
    from demo import build_demo, launch_options

    demo = build_demo()
    demo.queue(default_concurrency_limit=1).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True, **launch_options()
    )
    return demo


def launch_options_for(blocks) -> str:
    """Launch any Blocks in this process on a free localhost port, as the app is; returns its URL."""
    blocks.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True, ssr_mode=False)
    return blocks.local_url


@contextlib.contextmanager
def served_app(env: dict[str, str] | None = None, timeout: float = 300.0, root: Path = ROOT) -> Iterator[str]:
    """``python app.py`` in its own process, as a student or a Space runs it; yields its URL.

    Its own process keeps the server's threads and GIL apart from the benchmark's clients.
    ``root`` serves another checkout (see :func:`checkout`), for A/B comparisons.
    """
    port = free_port()
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"gradcam-app-{port}.log"), "w+b")
    process = subprocess.Popen(
        [sys.executable, str(Path(root) / "app.py")],
        cwd=root,
        env={**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"app.py exited with {process.returncode}:\n{log.read().decode(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise TimeoutError(f"app.py did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """A temporary git worktree of ``revision`` (a commit before a change, to measure it against)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="gradcam-baseline-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], cwd=ROOT, check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True)


# ----------------------------------------------------------------------------- the machine


def peak_rss() -> int:
    """This process's peak RSS in bytes.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child started
    from a large parent would report the parent's RSS (measured: 2.6 GiB instead of 1.7).
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def cpu_name() -> str:
    import platform

    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_line() -> str:
    """CPU, cores and load: the conditions every printed figure depends on."""
    return f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; load average {loadavg()}"
