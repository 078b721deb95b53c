"""The page in real headless Chromium: upload, drag the layer slider, pick a class, change opacity
and colormap, and look at it. Once the explanation is held, none of those sends a request.

Screenshots land in artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import pytest

from tests.pagehelpers import ARTIFACTS, ROOT, TIMEOUT_MS, browser, choose_model, held_key, open_page, top_k_held, type_number, upload, wait_for_view  # noqa: F401

pytestmark = pytest.mark.browser

EXAMPLE = ROOT / "assets" / "lion_and_cheetah.jpg"


def current_view(page) -> dict:
    return page.evaluate("() => JSON.parse(window.gradcamViewer.element.dataset.view)")


def canvas_digest(page, n: int) -> int:
    """A cheap fingerprint of one canvas's pixels: it changes when the canvas is redrawn differently."""
    return page.evaluate(
        "(n) => { const c = window.gradcamViewer.element.querySelectorAll('canvas')[n]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let h = 0; for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0; return h; }",
        n,
    )


def wait_drawn(page, **expected) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "(expected) => { const v = JSON.parse(window.gradcamViewer.element.dataset.view || '{}'); return !window.gradcamViewer.frame && Object.entries(expected).every(([k, x]) => v[k] === x); }",
            arg=expected,
            timeout=TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        drawn = page.evaluate("() => [window.gradcamViewer.frame, window.gradcamViewer.view, window.gradcamViewer.element.dataset.view, [...document.querySelectorAll('#opacity input')].map(i => i.value)]")
        pytest.fail(f"the viewer never drew {expected}; frame, view asked and view drawn: {drawn}; page errors: {page.errors}")


def drag_layer_slider(page, positions: list[int]) -> list[int]:
    """Drags the layer slider's thumb through the positions with the mouse; the layers drawn on the way."""
    track = page.locator("#layer input[type=range]")
    track.scroll_into_view_if_needed()
    box = track.bounding_box()
    x_of = lambda position: box["x"] + 8 + (box["width"] - 16) * (position - 1) / 3  # noqa: E731
    y = box["y"] + box["height"] / 2
    drawn = []
    page.mouse.move(x_of(positions[0]), y)
    page.mouse.down()
    for position in positions[1:]:
        page.mouse.move(x_of(position), y, steps=4)
        wait_drawn(page, layer=position)
        drawn.append(current_view(page)["layer"])
    page.mouse.up()
    return drawn


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_upload_then_every_switch_is_drawn_in_the_page_without_a_request(browser, app_url, scheme):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, app_url, color_scheme=scheme)
    if scheme == "dark":
        page.goto(app_url + "?__theme=dark")
        page.wait_for_function("() => window.gradcamViewer !== undefined", timeout=TIMEOUT_MS)
    upload(page, EXAMPLE)
    top_k_held(page)
    page.wait_for_selector("#top-class label", timeout=TIMEOUT_MS)
    assert "%" in page.inner_text("#top-class")
    assert "untrained" in page.inner_text("#predictions").lower()
    assert page.locator("#banner").is_visible()
    assert page.inner_text("#viewer-panel-1 figcaption") == "Grad-CAM heatmap", "the caption names the method"
    assert "layer4" in page.get_attribute("#viewer-panel-2 canvas", "aria-label"), "a text alternative names the layer"
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-upload.png"), full_page=True)

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    heat = canvas_digest(page, 1)
    assert drag_layer_slider(page, [4, 3, 2, 1, 2, 3, 4, 3, 2, 1]) == [3, 2, 1, 2, 3, 4, 3, 2, 1], "each position drawn on the way"
    assert canvas_digest(page, 1) != heat
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-layer1.png"), full_page=True)

    second = page.locator("#top-class label").nth(1)
    second.click()
    wait_drawn(page, layer=1, complete=True)
    assert current_view(page)["classIdx"] != page.evaluate("() => window.gradcamViewer.held.predictions[0].index")
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-second-class.png"), full_page=True)

    page.locator("#more-controls > button").first.click()
    type_number(page, "#opacity input[type=number]", "0.3")
    wait_drawn(page, opacity=0.3)
    page.locator("#colormap input").click()
    page.get_by_role("option", name="cividis").click()
    wait_drawn(page, colormap="cividis")
    page.locator("#counterfactual input").check()
    wait_drawn(page, counterfactual=True)
    page.locator("#box input").check()
    wait_drawn(page, box=True)
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-cividis-box.png"), full_page=True)
    assert requests == [], f"switches drawn in the page send no request; sent {requests}"

    page.locator("#viewer-panel-2").click()  # enlarged to the page's width, for a projector
    assert page.locator("#viewer-panel-2 canvas").bounding_box()["width"] > 1000
    page.screenshot(path=str(ARTIFACTS / f"explorer-{scheme}-enlarged.png"), full_page=True)
    assert not page.locator(".toast-body").filter(has_text="rror").count(), "no error toast"
    assert not page.errors, page.errors
    page.close()


def test_a_class_outside_the_top_k_is_fetched_once_and_a_new_photo_keeps_the_slider(browser, app_url):  # noqa: F811
    page = open_page(browser, app_url)
    upload(page, EXAMPLE)
    page.locator("#layer input[type=number]").fill("2")
    page.locator("#layer input[type=number]").press("Enter")
    wait_drawn(page, layer=2)
    held = page.evaluate("() => window.gradcamViewer.held.predictions.map(p => p.index)")
    outside = next(c for c in range(1000) if c not in held)
    box = page.locator("#any-class input")
    box.click()
    box.fill(f"{outside} ·")
    page.get_by_role("option").first.click()
    wait_drawn(page, classIdx=outside, complete=True)
    assert "still being computed" not in page.inner_text("#viewer")
    previous = held_key(page)
    upload(page, ROOT / "assets" / "tower.jpg", previous_key=previous)
    view = current_view(page)
    assert view["layer"] == 2 and view["complete"], "a new photo is drawn at the slider's position at once"
    assert not page.errors, page.errors
    page.close()


def test_switching_to_a_transformer_and_to_another_cnn_family(browser, app_url):  # noqa: F811
    """Every family behind the same controls: five panels and the strip, captions naming modules."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, app_url)
    upload(page, EXAMPLE)
    for name, deepest, no_relu in (("vit_b_16", "encoder_layer_11.ln_1", True), ("densenet121", "features.norm5", False)):
        previous = held_key(page)
        choose_model(page, name)
        wait_for_view(page, previous_key=previous)
        assert deepest in page.inner_text("#viewer-panel-8 figcaption")
        page.wait_for_function("text => document.querySelector('#layer').innerText.includes(text)", arg=deepest, timeout=TIMEOUT_MS)
        assert ("no ReLUs" in page.inner_text("#status")) == no_relu
        page.screenshot(path=str(ARTIFACTS / f"explorer-{name}.png"), full_page=True)
    assert not page.locator(".toast-body").filter(has_text="rror").count(), "no error toast"
    assert not page.errors, page.errors
    page.close()


def test_full_resolution_panels_on_demand_and_the_precision_control(browser, app_url):  # noqa: F811
    from demo.common import DEFAULT_PRECISION, PRECISION_NAMES

    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, app_url)
    upload(page, EXAMPLE)
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


#: The page's example button for EXAMPLE (its thumbnail is served under the file's own name).
EXAMPLE_BUTTON = f"button.gallery-item:has(img[src$='{EXAMPLE.name}'])"
CLASSMATES = 3


def wait_for_every_panel(page) -> None:
    """Until every panel and strip canvas on the page is drawn: none empty, none left waiting."""
    wait_for_view(page)
    assert page.evaluate(
        "() => [...window.gradcamViewer.element.querySelectorAll('canvas')].every(c => c.width > 0 && c.height > 0 && !c.classList.contains('viewer-waiting'))"
    ), "a canvas is empty or still waiting"


def decoded_downloads(page) -> list[int]:
    """Fetches every full-resolution file the page offers and decodes it; their widths."""
    return page.evaluate(
        """() => Promise.all([...document.querySelectorAll('#full-size-files a[download]')].map(
            async (a) => (await createImageBitmap(await (await fetch(a.href)).blob())).width))"""
    )


def test_three_pages_clicking_the_same_example_together_get_every_panel(browser, app_url):  # noqa: F811
    """Issue 18: students who click the same example at once. Every page draws every panel, and
    the full-resolution files, which all three are handed at the same paths, arrive whole."""
    pages = [open_page(browser, app_url) for _ in range(CLASSMATES)]  # each in a context of its own
    failed: list[str] = []

    def broke_off(request) -> None:
        if "/file=" in request.url:  # not the event streams, which the page closes itself (ERR_ABORTED)
            failed.append(f"{request.url}: {request.failure}")

    try:
        for page in pages:
            page.on("requestfailed", broke_off)
            choose_model(page, "resnet18")  # the cheapest first view: the test is about what arrives
            page.wait_for_selector(EXAMPLE_BUTTON, timeout=TIMEOUT_MS)
        for page in pages:  # one after another within milliseconds: the requests overlap
            page.click(EXAMPLE_BUTTON)
        for page in pages:
            wait_for_every_panel(page)
        for page in pages:
            page.click("#full-size")
        for page in pages:
            page.wait_for_function("() => document.querySelectorAll('#full-size-files a[download]').length >= 5", timeout=TIMEOUT_MS)
        originals = {page.eval_on_selector("#full-size-files a[download]", "a => a.href") for page in pages}
        assert len(originals) == 1, f"the pages were not handed the same original's file, so nothing was shared: {originals}"
        for page in pages:
            assert all(width > 0 for width in decoded_downloads(page))
            assert not page.errors, page.errors
        assert not failed, f"downloads broke off: {failed}"
    finally:
        for page in pages:
            page.close()


def test_a_late_piece_of_the_rest_does_not_switch_the_method_back(browser, app_url):  # noqa: F811
    """A student who changes the method while the rest still streams keeps the method chosen:
    only the answer to the change switches the viewer's method, never the old method's pieces."""
    page = open_page(browser, app_url)
    try:
        upload(page, EXAMPLE)
        view = page.evaluate(
            """async () => {
                const v = window.gradcamViewer;
                const key = v.held.key;
                await v.receive({ key, method: "eigencam", maps: {}, guided: {}, switchMethod: true });
                await v.receive({ key, method: "gradcam", maps: {}, guided: {} }); // a late piece of the rest
                v.draw();
                return JSON.parse(v.element.dataset.view);
            }"""
        )
        assert view["method"] == "eigencam"
        assert "Eigen" in page.inner_text("#viewer-panel-1 figcaption"), "the caption names the method chosen"
    finally:
        page.close()
