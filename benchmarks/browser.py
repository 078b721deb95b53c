#!/usr/bin/env python
"""What the browser feels: the page in headless Chromium against ``python app.py``, as a student uses it.

    python benchmarks/browser.py            # 5 repetitions per photo, resnet50
    python benchmarks/browser.py --smoke    # 1 repetition of the small photo, no targets judged (CI)

Each repetition is a new student: a fresh page (a new Gradio session), a new upload (a variant of
the photo, so never a cache hit), then the layer1..layer4 strip, a layer switch and a class switch.
Measured from the Python side of Playwright, from just before the action to the moment the new
pictures are decoded in the page (``img.complete && naturalWidth > 0``, polled every animation
frame), so each figure includes the upload, Gradio's queue and events, the server's work, the
download and the browser's decoding, as a student would wait for it.

  first view    upload -> all five panels decoded (the Grad-CAM ones may come first: also printed)
  strip         upload -> the four layer1..layer4 overlays decoded
  layer switch  layer slider released (after the strip) -> new heatmap decoded
  class switch  second prediction clicked -> new heatmap and Guided Grad-CAM decoded

Photos: the 640×427 example (assets/lion_and_cheetah.jpg) and a 4032×3024 phone-size JPEG made
by upscaling it. The app runs untrained resnet50 (offline here; speed does not depend on weights).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Stat, asset, check_at_most, loadavg, machine_line, served_app, variant  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANELS = [f"#panel-{n} img" for n in range(5)]
TIMEOUT_MS = 120_000

#: Targets on two vCPUs with resnet50, in ms: (640×427 example, 4032×3024 photo).
TARGETS = {
    "first view": (450, 600),
    "layer switch": (100, 150),
    "class switch": (120, 150),
    "strip": (900, 900),
}
MEASURES = ("first Grad-CAM panels", "first view", "strip", "layer switch", "class switch")

# True once every selector's image has a src not in `previous` and is decoded.
NEW_AND_DECODED = """([selectors, previous]) => selectors.every((s, i) => {
    const img = document.querySelector(s);
    return img && img.src && img.src !== previous[i] && img.complete && img.naturalWidth > 0;
})"""


def sources(page, selectors: list[str]) -> list[str | None]:
    return page.evaluate("sels => sels.map(s => { const i = document.querySelector(s); return i ? i.src : null; })", selectors)


def wait_new(page, selectors: list[str], previous: list[str | None]) -> None:
    page.wait_for_function(NEW_AND_DECODED, arg=[selectors, previous], polling="raf", timeout=TIMEOUT_MS)


def one_student(browser, url: str, upload: str) -> dict[str, float]:
    """One fresh page: upload, strip, layer switch, class switch; seconds per measure."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(url)
        page.wait_for_selector("#upload input[type=file]", state="attached", timeout=TIMEOUT_MS)
        times: dict[str, float] = {}
        started = time.perf_counter()
        page.set_input_files("#upload input[type=file]", upload)
        wait_new(page, PANELS[:3], [None] * 3)
        times["first Grad-CAM panels"] = time.perf_counter() - started
        wait_new(page, PANELS, [None] * 5)
        times["first view"] = time.perf_counter() - started
        page.wait_for_function(
            "() => { const imgs = [...document.querySelectorAll('#depth img')];"
            " return imgs.length >= 4 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
            polling="raf",
            timeout=TIMEOUT_MS,
        )
        times["strip"] = time.perf_counter() - started

        page.wait_for_timeout(300)  # let the page settle, as a student looks before sliding
        previous = sources(page, PANELS[1:2])
        layer_box = page.locator("#layer input[type=number]")
        layer_box.fill("2")
        started = time.perf_counter()
        layer_box.press("Tab")  # the slider explains on release, not on every tick
        wait_new(page, PANELS[1:2], previous)
        times["layer switch"] = time.perf_counter() - started

        page.wait_for_timeout(300)
        selectors = [PANELS[1], PANELS[4]]
        previous = sources(page, selectors)
        second = page.locator("#top-class label").nth(1)
        started = time.perf_counter()
        second.click()
        wait_new(page, selectors, previous)
        times["class switch"] = time.perf_counter() - started
        if page.locator(".toast-body").filter(has_text="rror").count():
            raise RuntimeError("the page showed an error toast")
        if errors:
            raise RuntimeError(f"page errors: {errors}")
        return times
    finally:
        page.close()


def make_photos(folder: Path, reps: int, smoke: bool) -> dict[str, list[str]]:
    """Per photo kind, one distinct file per repetition (plus one for the warm-up)."""
    example = asset("lion_and_cheetah.jpg")
    kinds = {"640x427 example": (example, "jpg")}
    if not smoke:
        kinds["4032x3024 photo"] = (example.resize((4032, 3024), 3), "jpg")  # 3 = BICUBIC
    files: dict[str, list[str]] = {}
    for kind, (picture, ext) in kinds.items():
        paths = []
        for rep in range(reps + 1):
            path = folder / f"{kind.split()[0]}-{rep}.{ext}"
            variant(picture, rep).save(path, quality=92)
            paths.append(str(path))
        files[kind] = paths
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per photo (default 5)")
    parser.add_argument("--smoke", action="store_true", help="1 repetition of the 640x427 example, no warm-up, no targets")
    parser.add_argument("--url", help="measure an app already running there instead of starting python app.py")
    args = parser.parse_args(argv)
    reps = 1 if args.smoke else max(1, args.reps)
    warmup = 0 if args.smoke else 1
    print(f"Browser benchmark ({'smoke: 1 rep, figures not meaningful' if args.smoke else f'{reps} reps + {warmup} warm-up per photo'}), resnet50, Chromium")
    print(machine_line())

    from playwright.sync_api import sync_playwright

    results: dict[str, dict[str, Stat]] = {}
    with tempfile.TemporaryDirectory(prefix="gradcam-browser-") as tmp:
        files = make_photos(Path(tmp), reps, args.smoke)
        started = time.perf_counter()
        with served_app() if args.url is None else contextlib.nullcontext(args.url.rstrip("/") + "/") as url, sync_playwright() as playwright:
            print(f"app serving at {url} after {time.perf_counter() - started:.1f} s")
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                for kind, paths in files.items():
                    collected: dict[str, list[float]] = {m: [] for m in MEASURES}
                    for rep, path in enumerate(paths[: reps + warmup], start=-warmup):
                        times = one_student(browser, url, path)
                        if rep >= 0:
                            for measure, seconds in times.items():
                                collected[measure].append(seconds)
                    results[kind] = {m: Stat(t) for m, t in collected.items()}
            finally:
                browser.close()

    misses = 0
    for column, (kind, stats) in enumerate(results.items()):
        print(f"\n== {kind}")
        for measure in MEASURES:
            stat = stats[measure]
            verdict = ""
            if measure in TARGETS and not args.smoke:
                passed, margin = check_at_most(stat.median * 1e3, TARGETS[measure][column], "ms")
                verdict = f"{'PASS' if passed else 'MISS'} ({margin})"
                misses += not passed
            print(f"  {measure:22s} {stat.ms()}  {verdict}")
    print("\n| measure | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for measure in MEASURES:
        cells = []
        for column, stats in enumerate(results.values()):
            target = f" (target ≤ {TARGETS[measure][column]} ms)" if measure in TARGETS else ""
            cells.append(f"{stats[measure].median * 1e3:.0f} ms{target}")
        print(f"| {measure} | " + " | ".join(cells) + " |")
    print(f"\nload average at end {loadavg()}" + ("" if args.smoke else f"; {misses} target(s) missed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
