"""The README's picture of the explorer, taken from the real page.

    python docs/screenshot.py [--out docs/explorer.png]

Serves ``python app.py`` on a free port (untrained weights: the machine that takes it is offline,
and the page says so in its banner), opens it in Debian's Chromium at 1400 CSS px, uploads one
picture (which builds the model's twin) and then assets/lion_and_cheetah.jpg, waits until the
page has drawn the five panels and the layer1..layer4 strip of its top class, and saves
the Explore tab down to the strip as a palette PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import CHROMIUM, CHROMIUM_FLAGS, served_app  # noqa: E402
from tests.pagehelpers import open_page, upload  # noqa: E402

EXAMPLE = ROOT / "assets" / "lion_and_cheetah.jpg"
WARM_UP = ROOT / "assets" / "tower.jpg"


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = open_page(browser, url)
            # The first upload builds the model's twin; the status line then times a usual first view.
            upload(page, WARM_UP)
            upload(page, EXAMPLE, previous_key=page.evaluate("() => window.gradcamViewer.held.key"))
            bottom = page.evaluate("() => { const r = document.querySelector('#viewer').getBoundingClientRect(); return r.bottom + window.scrollY; }")
            page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1400, "height": bottom + 16}, full_page=True)
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
    args = parser.parse_args(argv)
    with served_app() as url:
        shoot(url, args.out)
    optimise(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
