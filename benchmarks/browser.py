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
                (", strip": -> the strip redrawn for that class as well)

Photos: the 512×256 example (assets/lion_and_cheetah.jpg) and a 4032×3024 phone-size JPEG made
by upscaling an asset. ``--baseline REV`` serves a second app from a git worktree of REV and
alternates students between the two, so a lever is measured against the code before it under
the same load. The app runs untrained resnet50 (offline here; speed does not depend on weights).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CHROMIUM, CHROMIUM_FLAGS, Stat, asset, check_at_most, checkout, loadavg, machine_line, photo, served_app, variant  # noqa: E402

PANELS = [f"#panel-{n} img" for n in range(5)]
TIMEOUT_MS = 120_000

#: Targets on two vCPUs with resnet50, in ms: (640×427 example, 4032×3024 photo).
TARGETS = {
    "first view": (450, 600),
    "layer switch": (100, 150),
    "class switch": (120, 150),
    "strip": (900, 900),
}
MEASURES = ("first Grad-CAM panels", "first view", "strip", "layer switch", "class switch", "class switch, strip")

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
        strip_before = page.evaluate("() => [...document.querySelectorAll('#depth img')].map(i => i.src)")
        second = page.locator("#top-class label").nth(1)
        started = time.perf_counter()
        second.click()
        wait_new(page, selectors, previous)
        times["class switch"] = time.perf_counter() - started
        page.wait_for_function(
            "before => { const imgs = [...document.querySelectorAll('#depth img')];"
            " return imgs.length >= 4 && imgs.every((i, n) => i.src !== before[n] && i.complete && i.naturalWidth > 0); }",
            arg=strip_before,
            polling="raf",
            timeout=TIMEOUT_MS,
        )
        times["class switch, strip"] = time.perf_counter() - started
        if page.locator(".toast-body").filter(has_text="rror").count():
            raise RuntimeError("the page showed an error toast")
        if errors:
            raise RuntimeError(f"page errors: {errors}")
        return times
    finally:
        page.close()


EXAMPLE_KIND = "512x256 example"
LARGE_KIND = "4032x3024 photo"


def make_photos(folder: Path, count: int, smoke: bool) -> dict[str, list[str]]:
    """Per photo kind, ``count`` distinct files (a few pixels differ: each upload is a cache miss).

    The example is assets/lion_and_cheetah.jpg (512×256: the issue's "640×427" does not match the
    file); the phone-size photo is cheetah.jpg cropped to 4:3 and upscaled to 4032×3024.
    """
    kinds = {EXAMPLE_KIND: asset("lion_and_cheetah.jpg")}
    if not smoke:
        kinds[LARGE_KIND] = photo(4032, 3024)
    files: dict[str, list[str]] = {}
    for kind, picture in kinds.items():
        files[kind] = []
        for n in range(count):
            path = folder / f"{kind.split()[1]}-{n}.jpg"
            variant(picture, n).save(path, quality=92)
            files[kind].append(str(path))
    return files


def transport_floor(browser, reps: int) -> Stat:
    """The same round trip with no work: a slider release answered with five ready-made panels.

    A bare Gradio page in this process with the explorer's five gr.Image panels (PANEL_SIDE PNGs,
    new files every time so the browser must fetch and decode them). Whatever a layer switch
    costs beyond this is the explorer's own work.
    """
    import gradio as gr
    import numpy as np

    from common import launch_options_for, photo as make_photo
    from demo.common import PANEL_SIDE
    from demo.files import png_file

    picture = np.asarray(make_photo(PANEL_SIDE, PANEL_SIDE // 2))
    # Encoded before the clock starts: the handler only hands over files.
    ready = [[png_file(np.roll(picture, 5 * rep + n, axis=1), f"floor-{n}") for n in range(5)] for rep in range(reps + 1)]

    def answer(_: float) -> list[str]:
        return ready.pop()

    with gr.Blocks() as floor:
        slider = gr.Slider(1, 4, value=4, step=1, elem_id="layer")
        with gr.Row():
            panels = [gr.Image(format="png", height=260, interactive=False, elem_id=f"panel-{n}") for n in range(5)]
        slider.release(answer, slider, panels)
    url = launch_options_for(floor)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    times = []
    try:
        page.goto(url)
        box = page.locator("#layer input[type=number]")
        for rep in range(reps + 1):
            previous = sources(page, PANELS)
            box.fill(str(1 + rep % 3))
            started = time.perf_counter()
            box.press("Tab")
            wait_new(page, PANELS, previous)
            if rep:
                times.append(time.perf_counter() - started)
            page.wait_for_timeout(200)
    finally:
        page.close()
        floor.close()
    return Stat(times)


def measure(browser, urls: dict[str, str], files: dict[str, list[str]], reps: int, warmup: int) -> dict[str, dict[str, dict[str, Stat]]]:
    """results[app][photo kind][measure]; apps alternate student by student, in rotating order."""
    collected = {app: {kind: {m: [] for m in MEASURES} for kind in files} for app in urls}
    apps = list(urls)
    for kind, paths in files.items():
        for rep, path in enumerate(paths[: reps + warmup], start=-warmup):
            order = apps if rep % 2 == 0 else apps[::-1]
            for app in order:
                times = one_student(browser, urls[app], path)
                if rep >= 0:
                    for name, seconds in times.items():
                        collected[app][kind][name].append(seconds)
    return {app: {kind: {m: Stat(t) for m, t in by_measure.items()} for kind, by_measure in by_kind.items()} for app, by_kind in collected.items()}


def report(results: dict[str, dict[str, Stat]], judge: bool) -> int:
    """Prints one app's figures against the targets; returns the number of misses."""
    misses = 0
    for column, (kind, stats) in enumerate(results.items()):
        print(f"\n== {kind}")
        for name in MEASURES:
            stat = stats[name]
            verdict = ""
            if name in TARGETS and judge:
                passed, margin = check_at_most(stat.median * 1e3, TARGETS[name][column], "ms")
                verdict = f"{'PASS' if passed else 'MISS'} ({margin})"
                misses += not passed
            print(f"  {name:22s} {stat.ms()}  {verdict}")
    print("\n| measure | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for name in MEASURES:
        cells = []
        for column, stats in enumerate(results.values()):
            target = f" (target ≤ {TARGETS[name][column]} ms)" if name in TARGETS else ""
            cells.append(f"{stats[name].median * 1e3:.0f} ms{target}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per photo (default 5)")
    parser.add_argument("--smoke", action="store_true", help="1 repetition of the small example, no warm-up, no targets")
    parser.add_argument("--url", help="measure an app already running there instead of starting python app.py")
    parser.add_argument("--baseline", metavar="REV", help="also serve git revision REV (or a folder holding another copy of the app) and alternate students between the two (A/B)")
    parser.add_argument("--candidate", metavar="REV", help="serve git revision REV instead of the working tree (with --baseline: commit against commit)")
    parser.add_argument("--only", choices=("small", "large"), help="measure one photo only")
    args = parser.parse_args(argv)
    reps = 1 if args.smoke else max(1, args.reps)
    warmup = 0 if args.smoke else 1
    print(f"Browser benchmark ({'smoke: 1 rep, figures not meaningful' if args.smoke else f'{reps} reps + {warmup} warm-up per photo'}), resnet50, Chromium")
    print(machine_line())

    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gradcam-browser-")))
        files = make_photos(tmp, reps + warmup, args.smoke)
        if args.only:
            files = {kind: paths for kind, paths in files.items() if kind.startswith(EXAMPLE_KIND if args.only == "small" else LARGE_KIND)}
        started = time.perf_counter()
        if args.url is not None:
            urls = {"this tree": args.url.rstrip("/") + "/"}
        elif args.candidate:
            urls = {"this tree": stack.enter_context(served_app(root=stack.enter_context(checkout(args.candidate))))}
        else:
            urls = {"this tree": stack.enter_context(served_app())}
        if args.baseline:
            root = Path(args.baseline) if Path(args.baseline).is_dir() else stack.enter_context(checkout(args.baseline))
            urls[f"baseline {args.baseline}"] = stack.enter_context(served_app(root=root))
        print(f"serving {', '.join(urls)} after {time.perf_counter() - started:.1f} s")
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        stack.callback(browser.close)
        results = measure(browser, urls, files, reps, warmup)
        floor = transport_floor(browser, max(3, reps))

    misses = 0
    for app, by_kind in results.items():
        print(f"\n######## {app}")
        misses += report(by_kind, judge=not args.smoke and app == "this tree")
    if args.baseline:
        base = results[f"baseline {args.baseline}"]
        print(f"\n######## this tree / baseline {args.baseline} (median ratio; < 1 is faster)")
        for kind in files:
            cells = [f"{name} {results['this tree'][kind][name].median / base[kind][name].median:.2f}" for name in MEASURES]
            print(f"  {kind}: " + ", ".join(cells))
    print(f"\ntransport floor (a bare Gradio page answering a slider release with five ready PANEL_SIDE px PNG panels): {floor.ms()}")
    print(f"\nload average at end {loadavg()}" + ("" if args.smoke else f"; {misses} target(s) missed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
