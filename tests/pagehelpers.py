"""Driving the Explore tab in Chromium: upload, choose a model, wait for the viewer, read its canvases."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from benchmarks.common import CHROMIUM_FLAGS
from tests.conftest import require_chromium

TIMEOUT_MS = 90_000
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
#: The viewer's canvases in page order: the five panels, then layer1..layer4 of the strip.
CANVASES = ("original", "heatmap", "overlay", "guided_backprop", "guided_gradcam", "layer1", "layer2", "layer3", "layer4")


@pytest.fixture(scope="module")
def browser():
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def open_page(browser, app_url: str, **options):
    """A new page on the app, its upload control attached; page errors are collected in page.errors."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, **options)
    page.errors = []
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    page.goto(app_url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=TIMEOUT_MS)
    page.wait_for_function("() => window.gradcamViewer !== undefined", timeout=TIMEOUT_MS)
    return page


def choose_model(page, name: str) -> None:
    box = page.locator("#model input")
    box.click()
    box.fill(name)
    page.get_by_role("option", name=name).first.click()


def type_number(page, selector: str, value: str) -> None:
    """Types a number into a slider's box as a person would, once the box keeps what was typed.

    A slider inside a closed accordion is mounted when the accordion opens, and Gradio then sets its
    value once more (after its expand event): a number typed in that window is overwritten, which
    no person types fast enough to meet, so the box is typed again until it holds the number."""
    box = page.locator(selector)
    for _ in range(5):
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(250)
        if box.input_value() == value:
            return
    raise AssertionError(f"{selector} does not keep {value}: it shows {box.input_value()}")


def held_key(page) -> str | None:
    return page.evaluate("() => window.gradcamViewer.held ? window.gradcamViewer.held.key : null")


def upload(page, path: Path | str, *, previous_key: str | None = None) -> None:
    """Uploads the picture and waits until the viewer has drawn its top class completely."""
    page.set_input_files("#upload input[type=file]", str(path))
    wait_for_view(page, previous_key=previous_key)


def wait_for_view(page, *, previous_key: str | None = None, classes: int = 1) -> None:
    """Until the viewer holds a new explanation with ``classes`` classes and has drawn a complete view."""
    try:
        page.wait_for_function(
            """([previous, classes]) => {
                const v = window.gradcamViewer;
                if (!v || !v.held || v.held.key === previous || v.frame) return false;
                const view = JSON.parse(v.element.dataset.view || "{}");
                return view.key === v.held.key && view.complete && Object.keys(v.held.guided).length >= classes;
            }""",
            arg=[previous_key, classes],
            timeout=TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        held = page.evaluate("() => { const v = window.gradcamViewer, h = v && v.held; return h && {key: h.key, model: h.model, guided: Object.keys(h.guided), view: v.element.dataset.view, frame: v.frame}; }")
        pytest.fail(f"no complete view of a new explanation (previous key {previous_key}); the viewer holds {held}; page errors: {getattr(page, 'errors', None)}")


def top_k_held(page) -> None:
    """Until the background completion's classes have all reached the page."""
    page.wait_for_function(
        "() => { const h = window.gradcamViewer.held; return h && h.predictions.every(p => h.guided[p.index] && (h.maps[`${h.method}/${p.index}/0`] || []).every(Boolean)); }",
        timeout=TIMEOUT_MS,
    )


def draw(page, change: dict) -> dict[str, np.ndarray]:
    """Sets the view, waits for the frame that draws it, and returns every canvas as (h, w, 3) uint8."""
    encoded = page.evaluate(
        """async (change) => {
            const viewer = window.gradcamViewer;
            const before = viewer.drawn;
            viewer.set(change);
            while (viewer.drawn === before) await new Promise((r) => requestAnimationFrame(r));
            return [...viewer.element.querySelectorAll("canvas")].map((canvas) => {
                const rgba = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let text = "";
                for (let i = 0; i < rgba.length; i += 0x8000) text += String.fromCharCode(...rgba.subarray(i, i + 0x8000));
                return { width: canvas.width, height: canvas.height, rgba: btoa(text) };
            });
        }""",
        change,
    )
    pictures = {}
    for name, canvas in zip(CANVASES, encoded):
        rgba = np.frombuffer(base64.b64decode(canvas["rgba"]), dtype=np.uint8).reshape(canvas["height"], canvas["width"], 4)
        pictures[name] = rgba[..., :3]
    return pictures
