"""The README's picture of the explorer, taken from the real page.

    python docs/screenshot.py [--out docs/explorer.png] [--width 1400]

Serves ``python app.py`` on a free port (untrained weights: the machine that takes it is offline,
and the page says so in its banner), opens it in Debian's Chromium at 1400 CSS px, uploads one
picture (which builds the model's twin) and then assets/lion_and_cheetah.jpg, waits for the five
panels and the layer1..layer4 strip, and saves the Explore tab down to the strip as a palette PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import CHROMIUM, CHROMIUM_FLAGS, served_app  # noqa: E402

EXAMPLE = ROOT / "assets" / "lion_and_cheetah.jpg"
WARM_UP = ROOT / "assets" / "tower.jpg"
#: The five panels and the four pictures of the layer1..layer4 strip, as (selector, index).
PICTURES = [*((f"#panel-{n} img", 0) for n in range(5)), *(("#depth img", n) for n in range(4))]
SOURCES = "pictures => pictures.map(([s, n]) => document.querySelectorAll(s)[n]?.src ?? null)"
NEW_PICTURES = """([pictures, before]) => pictures.every(([s, n], k) => {
    const i = document.querySelectorAll(s)[n];
    return i && i.complete && i.naturalWidth > 0 && i.src !== before[k];
})"""
TIMEOUT_MS = 120_000


def shoot(url: str, out: Path, width: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.goto(url)
            page.wait_for_selector("#upload input[type=file]", state="attached", timeout=TIMEOUT_MS)
            # A first upload builds the model's twin; the status line then times a usual first view.
            for picture in (WARM_UP, EXAMPLE):
                before = page.evaluate(SOURCES, PICTURES)
                page.set_input_files("#upload input[type=file]", str(picture))
                page.wait_for_function(NEW_PICTURES, arg=[PICTURES, before], timeout=TIMEOUT_MS)
            page.wait_for_timeout(1000)  # the progress animation fades out
            bottom = page.evaluate("() => { const r = document.querySelector('#depth').getBoundingClientRect(); return r.bottom + window.scrollY; }")
            page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": width, "height": bottom + 16}, full_page=True)
        finally:
            browser.close()


def optimise(path: Path) -> None:
    """A palette PNG: a screenshot of flat UI and smooth heatmaps loses nothing visible in 256 colours."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "explorer.png")
    parser.add_argument("--width", type=int, default=1400, help="viewport width in CSS pixels (default 1400)")
    args = parser.parse_args(argv)
    with served_app() as url:
        shoot(url, args.out, args.width)
    optimise(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
