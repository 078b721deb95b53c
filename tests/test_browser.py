"""The page in real headless Chromium: upload, slide the layer, pick a class, and look at it.

Screenshots land in artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.common import CHROMIUM_FLAGS
from demo.ui import PANEL_SIDE
from tests.conftest import require_chromium

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
EXAMPLE = ROOT / "assets" / "lion_and_cheetah.jpg"
PANELS = [f"#panel-{n} img" for n in range(5)]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def heatmap_source(page) -> str:
    return page.get_attribute(PANELS[1], "src")


def wait_for_new_heatmap(page, previous: str) -> str:
    page.wait_for_function(
        "([selector, previous]) => { const img = document.querySelector(selector); return img && img.src && img.src !== previous && img.complete; }",
        arg=[PANELS[1], previous],
        timeout=TIMEOUT_MS,
    )
    return heatmap_source(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_upload_slide_and_pick_a_class(browser, app_url, scheme):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(app_url + ("?__theme=dark" if scheme == "dark" else ""))
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=TIMEOUT_MS)

    page.set_input_files("#upload input[type=file]", str(EXAMPLE))
    for selector in PANELS:
        page.wait_for_selector(selector, timeout=TIMEOUT_MS)
    page.wait_for_function(
        "sel => sel.every(s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })",
        arg=PANELS,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_selector("#top-class label", timeout=TIMEOUT_MS)
    assert "%" in page.inner_text("#top-class")
    assert "untrained" in page.inner_text("#predictions").lower()
    assert page.locator("#banner").is_visible()
    for selector in PANELS:
        assert page.eval_on_selector(selector, "img => img.naturalWidth") == PANEL_SIDE, "panels at display size"
    assert "Grad-CAM heatmap" in page.inner_text("#panel-1"), "the caption names the method"
    page.wait_for_function("() => document.querySelectorAll('#depth img').length >= 4", timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-upload.png"), full_page=True)

    before = heatmap_source(page)
    layer_box = page.locator("#layer input[type=number]")
    layer_box.fill("1")
    layer_box.press("Tab")  # the slider explains on release, not on every tick
    after_layer = wait_for_new_heatmap(page, before)
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-layer1.png"), full_page=True)

    page.locator("#top-class label").nth(1).click()
    wait_for_new_heatmap(page, after_layer)
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-second-class.png"), full_page=True)

    assert not page.locator(".toast-body").filter(has_text="rror").count(), "no error toast"
    assert not errors, errors
    page.close()


def choose_model(page, name: str) -> None:
    box = page.locator("#model input")
    box.click()
    box.fill(name)
    page.get_by_role("option", name=name).first.click()


def test_switching_to_a_transformer_and_to_another_cnn_family(browser, app_url):
    """Every family behind the same controls: five panels and the strip, captions naming modules."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(app_url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=TIMEOUT_MS)
    page.set_input_files("#upload input[type=file]", str(EXAMPLE))
    page.wait_for_selector(PANELS[1], timeout=TIMEOUT_MS)
    page.wait_for_function("() => document.querySelectorAll('#depth img').length >= 4", timeout=TIMEOUT_MS)
    for name, deepest, no_relu in (("vit_b_16", "encoder_layer_11.ln_1", True), ("densenet121", "features.norm5", False)):
        before = heatmap_source(page)
        choose_model(page, name)
        wait_for_new_heatmap(page, before)
        page.wait_for_function(
            "text => document.querySelector('#depth') && document.querySelector('#depth').innerText.includes(text)",
            arg=deepest,
            timeout=TIMEOUT_MS * 3,
        )
        page.wait_for_function(
            "sel => sel.every(s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })",
            arg=PANELS,
            timeout=TIMEOUT_MS,
        )
        assert page.locator("#depth img").count() >= 4
        page.wait_for_function("text => document.querySelector('#layer').innerText.includes(text)", arg=deepest, timeout=TIMEOUT_MS)
        assert ("no ReLUs" in page.inner_text("#status")) == no_relu
        page.screenshot(path=str(ARTIFACTS / f"explorer-{name}.png"), full_page=True)
    assert not page.locator(".toast-body").filter(has_text="rror").count(), "no error toast"
    assert not errors, errors
    page.close()


def test_full_resolution_panels_on_demand_and_the_precision_control(browser, app_url):
    from demo.ui import DEFAULT_PRECISION, PRECISION_NAMES

    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=TIMEOUT_MS)
    page.set_input_files("#upload input[type=file]", str(EXAMPLE))
    page.wait_for_function(
        "sel => sel.every(s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })",
        arg=PANELS,
        timeout=TIMEOUT_MS,
    )
    assert f"maps in {PRECISION_NAMES[DEFAULT_PRECISION]}" in page.inner_text("#status")
    page.click("#full-size")
    page.wait_for_function("() => document.querySelectorAll('#full-size-files a').length >= 5", timeout=TIMEOUT_MS)
    names = page.eval_on_selector_all("#full-size-files a[download]", "links => links.map(a => a.getAttribute('download'))")
    assert len(names) == 5 and all(n.endswith(".png") for n in names), names

    page.get_by_text("More controls").click()
    page.locator("#precision label").filter(has_text="exact (float32)").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('exact (float32)')", timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "explorer-full-size-and-precision.png"), full_page=True)
    page.close()
