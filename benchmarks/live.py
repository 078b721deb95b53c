#!/usr/bin/env python
"""Live mode: per-frame time on the server, frames per second in Chromium, and a soak.

    python benchmarks/live.py                  # server + transport + browser sections (~3 min)
    python benchmarks/live.py --soak           # ... then a 5-minute stream: fps drift and server RSS
    python benchmarks/live.py --smoke          # a few frames of each, no targets judged (CI)
    python benchmarks/live.py --sections server,browser
    python benchmarks/live.py --sections browser --app-env OMP_WAIT_POLICY=PASSIVE   # A/B a setting

Sections
  server     core.live.explain_frame on a decoded 640×480 camera frame -> JPEG overlay (the whole
             per-frame path: shrink to 224 px short side, forward, map, overlay, label, JPEG), for
             resnet18 and resnet50 at layer4 (closed form, no backward) and at layer3 (one backward),
             in float32 and in the page's precision (bfloat16 where the CPU does it natively).
             Interleaved frames, medians. Targets, in the page's precision: ≤ 30 ms (resnet18),
             ≤ 60 ms (resnet50).
  transport  What the stream itself carries, with an echo handler (no network): Gradio's default
             WebP file, a JPEG file, and the JPEG data URL the Live tab uses (demo.live.LiveImage).
  browser    ``python app.py`` in its own process, headless Chromium on the same machine with a
             fake 640×480 camera (a moving square, see fakecam.py); the distinct overlays that
             reach the page in 15 s, for resnet18 and resnet50 at layer4. Targets: ≥ 8 and ≥ 5 /s.
  soak       (--soak) a 5-minute resnet18 stream: frames per second each minute, drift of the last
             minute against the first (target within 20%), and the server's RSS growth after the
             first minute (target < 50 MB).

The app runs untrained weights (offline here): speed does not depend on the weights. On a shared
machine every figure moves with the neighbours' load, which is printed with each section.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CHROMIUM, ROOT, Stat, check_at_most, free_port, loadavg, machine_line, photo, served_app  # noqa: E402
from fakecam import (  # noqa: E402
    READOUT,
    choose_option,
    count_frames,
    launch_with_camera,
    open_live,
    wait_until_served,
    write_clip,
    write_y4m,
)

import numpy as np  # noqa: E402
import torch  # noqa: E402

THREADS = 2
TARGET_SERVER_MS = {"resnet18": 30.0, "resnet50": 60.0}
TARGET_FPS = {"resnet18": 8.0, "resnet50": 5.0}
TARGET_DRIFT = 0.20
TARGET_RSS_GROWTH_MB = 50.0


def check_fps(fps: float, target: float) -> tuple[bool, str]:
    if fps >= target:
        return True, f"{fps:.1f}/s >= {target:.0f}/s, {fps / target - 1:.0%} margin"
    return False, f"{fps:.1f}/s < {target:.0f}/s, {1 - fps / target:.0%} short"


def verdict(passed: bool, margin: str, judge: bool) -> str:
    return f"{'PASS' if passed else 'MISS'} ({margin})" if judge else "(not judged)"


# ----------------------------------------------------------------------------- server


def camera_frames(count: int) -> list[np.ndarray]:
    """640×480 frames of a photo with a bright square that moves: each frame a new picture."""
    base = np.asarray(photo(640, 480))
    frames = []
    for i in range(count):
        frame = base.copy()
        t = 2 * np.pi * i / count
        x, y = int(480 * (0.5 + 0.4 * np.cos(t))), int(360 * (0.5 + 0.4 * np.sin(t)))
        frame[y : y + 120, x : x + 120] = 255
        frames.append(frame)
    return frames


def section_server(frames: int, judge: bool) -> dict[str, Stat]:
    from core import load_model, native_bfloat16
    from core.live import explain_frame

    # The page streams in its own precision: bfloat16 where the CPU does it natively. Its rows are judged.
    page = "bfloat16" if native_bfloat16() else "float32"
    precisions = sorted({"float32", page})
    print(f"\n== server: decoded 640x480 frame -> JPEG overlay, {frames} frames per setting, interleaved (load {loadavg()})")
    settings = [(name, layer, precision) for name in ("resnet18", "resnet50") for layer in (4, 3) for precision in precisions]
    models = {name: load_model(name, weights="random") for name, _, _ in settings}
    pictures = camera_frames(24)
    for name, layer, precision in settings:  # warm-up: the twin, allocator pools, fonts
        for i in range(3):
            explain_frame(models[name], pictures[i], layer, precision=precision)
    totals: dict[tuple, list[float]] = {s: [] for s in settings}
    parts: dict[tuple, dict[str, list[float]]] = {s: {} for s in settings}
    sizes: dict[tuple, list[int]] = {s: [] for s in settings}
    for i in range(frames):
        order = settings[i % len(settings) :] + settings[: i % len(settings)]
        for setting in order:
            name, layer, precision = setting
            result = explain_frame(models[name], pictures[i % len(pictures)], layer, precision=precision)
            totals[setting].append(result.timings_ms["total"] / 1e3)
            sizes[setting].append(len(result.jpeg))
            for part, ms in result.timings_ms.items():
                parts[setting].setdefault(part, []).append(ms)
    stats = {}
    for setting in settings:
        name, layer, precision = setting
        stat = Stat(totals[setting])
        stats[f"{name} layer{layer} {precision}"] = stat
        breakdown = ", ".join(f"{p} {np.median(v):.1f}" for p, v in parts[setting].items() if p != "total")
        line = f"  {name} layer{layer} {precision}: {stat.ms()}  [{breakdown} ms; JPEG {np.median(sizes[setting]) / 1024:.0f} KB]"
        if layer == 4 and precision == page:
            passed, margin = check_at_most(stat.median * 1e3, TARGET_SERVER_MS[name], "ms")
            line += "  " + verdict(passed, margin, judge)
        print(line)
    encodings(pictures[0])
    return stats


def encodings(frame: np.ndarray) -> None:
    """JPEG against WebP for the live overlay: encoding time and bytes per frame."""
    from PIL import Image

    from core import load_model
    from core.live import explain_frame
    from core.render import encode_jpeg

    overlay = explain_frame(load_model("resnet18", weights="random"), frame, 4, encode=False).overlay

    def webp() -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(overlay).save(buffer, "webp", quality=80)
        return buffer.getvalue()

    for label, encode in (("JPEG q80 (OpenCV)", lambda: encode_jpeg(overlay, 80)), ("WebP q80 (Pillow, Gradio's default)", webp)):
        times = []
        for _ in range(20):
            started = time.perf_counter()
            data = encode()
            times.append(time.perf_counter() - started)
        print(f"  encode {overlay.shape[1]}x{overlay.shape[0]} overlay as {label}: {np.median(times) * 1e3:.1f} ms, {len(data) / 1024:.0f} KB")


# ----------------------------------------------------------------------------- transport


def echo_app(kind: str):
    """A page with a Live tab whose handler returns the frame shrunk to the live size: no network."""
    import gradio as gr
    from PIL import Image

    from demo.live import STREAM_EVERY_S, LiveImage

    with gr.Blocks() as demo:
        with gr.Tabs():
            with gr.Tab("Live"):
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", elem_id="live-camera")
                if kind == "data-url JPEG":
                    out = LiveImage(elem_id="live-overlay", interactive=False)
                else:
                    out = gr.Image(elem_id="live-overlay", interactive=False, format="webp" if "WebP" in kind else "jpeg")
                readout = gr.Markdown(elem_id="live-readout")

                def echo(frame):
                    if frame is None:
                        return None, gr.skip()
                    return np.asarray(Image.fromarray(frame).resize((299, 224))), "frames/s"

                camera.stream(echo, [camera], [out, readout], stream_every=STREAM_EVERY_S, time_limit=120, concurrency_limit=4)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True, ssr_mode=False)
    return demo


def section_transport(playwright, clip: Path, seconds: float) -> None:
    print(f"\n== transport: echo handler (frame shrunk to 299x224, no network), distinct frames per second in Chromium (load {loadavg()})")
    for kind in ("WebP file (gr.Image default)", "JPEG file", "data-url JPEG"):
        demo = echo_app(kind)
        browser = launch_with_camera(playwright, CHROMIUM, clip)
        try:
            page = open_live(browser, demo.local_url)
            wait_until_served(page)
            page.wait_for_timeout(2000)
            counted = count_frames(page, seconds)
            print(f"  {kind:30s} {counted.fps:5.1f} frames/s ({counted.frames} in {counted.seconds:.1f} s)")
        finally:
            browser.close()
            demo.close()


# ----------------------------------------------------------------------------- browser


def choose_model(page, name: str) -> None:
    """Picks ``name`` in the Live tab's model dropdown and waits for a frame from it."""
    choose_option(page, "#live-model", name)
    page.wait_for_function(
        "([sel, name]) => (document.querySelector(sel)?.innerText || '').includes(name + ' at')", arg=[READOUT, name], timeout=180_000
    )


def readout_figures(page) -> str:
    text = page.inner_text(READOUT)
    found = re.search(r"server (\d+) ms a frame", text)
    latency = re.search(r"latency ≤ (\d+) ms", text)
    return f"server {found.group(1) if found else '?'} ms a frame, latency ≤ {latency.group(1) if latency else '?'} ms (page readout)"


def section_browser(playwright, url: str, clip: Path, seconds: float, judge: bool) -> dict[str, float]:
    print(f"\n== browser: python app.py + headless Chromium, fake 640x480 camera, layer4, {seconds:.0f} s per model (load {loadavg()})")
    browser = launch_with_camera(playwright, CHROMIUM, clip)
    figures = {}
    try:
        page = open_live(browser, url)
        wait_until_served(page)
        for name in ("resnet18", "resnet50"):
            choose_model(page, name)
            page.wait_for_timeout(3000)  # the first frames after a switch load the model
            counted = count_frames(page, seconds)
            figures[name] = counted.fps
            passed, margin = check_fps(counted.fps, TARGET_FPS[name])
            print(f"  {name}: {counted.fps:5.1f} distinct overlays/s ({counted.frames} in {counted.seconds:.1f} s); {readout_figures(page)}  {verdict(passed, margin, judge)}")
        page.screenshot(path=str(ROOT / "artifacts" / "live-benchmark.png"))
    finally:
        browser.close()
    return figures


def server_process():
    """The app.py child this process started (for its RSS)."""
    import psutil

    children = [p for p in psutil.Process().children() if "app.py" in " ".join(p.cmdline())]
    return children[0] if children else None


def section_soak(playwright, url: str, clip: Path, minutes: int, judge: bool) -> None:
    print(f"\n== soak: one resnet18 layer4 stream for {minutes} min (load {loadavg()})")
    server = server_process()
    browser = launch_with_camera(playwright, CHROMIUM, clip)
    try:
        page = open_live(browser, url)
        wait_until_served(page)
        rates, rss = [], []
        for minute in range(minutes):
            counted = count_frames(page, 60.0)
            rates.append(counted.fps)
            rss.append(server.memory_info().rss / 2**20 if server else float("nan"))
            print(f"  minute {minute + 1}: {counted.fps:5.1f} frames/s, server RSS {rss[-1]:.0f} MB (load {loadavg()})", flush=True)
        drift = rates[-1] / rates[0] - 1 if rates[0] else float("nan")
        growth = rss[-1] - rss[0]
        print(f"  fps drift, last minute vs first: {drift:+.0%}  {verdict(abs(drift) <= TARGET_DRIFT, f'target within ±{TARGET_DRIFT:.0%}', judge)}")
        print(f"  server RSS growth after the first minute: {growth:+.1f} MB  {verdict(growth < TARGET_RSS_GROWTH_MB, f'target < {TARGET_RSS_GROWTH_MB:.0f} MB', judge)}")
    finally:
        browser.close()


def photo_clip(path: Path, seconds: float = 4.0, fps: int = 15) -> Path:
    """A slow pan across a photo (lion and cheetah), as a camera held at a picture would see it."""
    from common import asset

    picture = asset("lion_and_cheetah.jpg")
    scale = 480 / picture.height
    wide = np.asarray(picture.resize((round(picture.width * scale), 480)))
    span = wide.shape[1] - 640
    count = max(2, round(seconds * fps))
    frames = [np.ascontiguousarray(wide[:, round(span * (0.5 - 0.5 * np.cos(2 * np.pi * i / count))) :][:, :640]) for i in range(count)]
    return write_y4m(path, frames, fps)


def screenshot(playwright, url: str, folder: Path, target: Path) -> None:
    """The Live tab on a projector-sized dark page, streaming a photo, saved to ``target``."""
    browser = launch_with_camera(playwright, CHROMIUM, photo_clip(folder / "photo.y4m"))
    try:
        page = open_live(browser, url, viewport=(1600, 1000), color_scheme="dark")
        wait_until_served(page)
        page.wait_for_timeout(4000)
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target))
        print(f"\nscreenshot: {target}")
    finally:
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few frames per section, no targets judged: checks that it runs")
    parser.add_argument("--soak", action="store_true", help="also stream for 5 minutes (fps drift, server RSS)")
    parser.add_argument("--sections", default="server,transport,browser", help="comma-separated: server, transport, browser")
    parser.add_argument("--frames", type=int, default=40, help="frames per setting in the server section (default 40)")
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="also save the Live tab streaming a photo (docs/live.png, shown in docs/live.md)")
    parser.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE", help="environment for the served app (repeatable), e.g. OMP_WAIT_POLICY=PASSIVE")
    args = parser.parse_args(argv)
    torch.set_num_threads(1 if args.smoke else THREADS)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    judge = not args.smoke
    print("Live-mode benchmark" + (" (smoke: figures not meaningful)" if args.smoke else ""))
    print(machine_line() + f"; torch {torch.__version__}, {torch.get_num_threads()} threads")
    started = time.perf_counter()
    if "server" in sections:
        section_server(3 if args.smoke else args.frames, judge)
    browser_sections = sections & {"transport", "browser"} or args.soak or args.screenshot
    if browser_sections:
        from playwright.sync_api import sync_playwright

        (ROOT / "artifacts").mkdir(exist_ok=True)
        seconds = 3.0 if args.smoke else 15.0
        with tempfile.TemporaryDirectory(prefix="gradcam-live-") as folder, sync_playwright() as playwright:
            clip = write_clip(Path(folder) / "moving.y4m")
            if "transport" in sections:
                section_transport(playwright, clip, seconds)
            if "browser" in sections or args.soak or args.screenshot:
                app_env = dict(item.split("=", 1) for item in args.app_env)
                if app_env:
                    print(f"\napp environment: {app_env}")
                with served_app(env=app_env) as url:
                    if "browser" in sections:
                        section_browser(playwright, url, clip, seconds, judge)
                    if args.soak:
                        section_soak(playwright, url, clip, 1 if args.smoke else 5, judge)
                    if args.screenshot:
                        screenshot(playwright, url, Path(folder), args.screenshot)
    print(f"\nload average at end {loadavg()}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
