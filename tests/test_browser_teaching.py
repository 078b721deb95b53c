"""The teaching tools in real headless Chromium: two models side by side, the sanity check, the handout.

Screenshots land in artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import pytest
from PIL import Image

from core.handout import PAGE_SIZE
from tests.pagehelpers import ARTIFACTS, ROOT, TIMEOUT_MS, browser, open_page, upload  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.browser

#: Seven network passes on a shared 2-core machine.
SANITY_TIMEOUT_MS = 240_000


def open_accordion(page, elem_id: str) -> None:
    page.locator(f"#{elem_id} > button").first.click()


def test_compare_models_sanity_check_and_handout(browser, app_url, tmp_path):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, app_url)
    page.set_viewport_size({"width": 1400, "height": 1400})
    # resnet18 keeps the sanity check's seven passes short.
    page.get_by_label("Model", exact=True).click()
    page.locator('#model li[aria-label^="resnet18 "]').click()
    upload(page, ROOT / "assets" / "lion_and_cheetah.jpg")

    # Model against model: resnet50 (ticked by default) and resnet18.
    open_accordion(page, "compare-models")
    choice = page.locator("#compare-models-choice")
    for label in choice.locator("label").all():
        ticked = label.locator("input").is_checked()
        if ticked != (label.inner_text().split()[0] in ("resnet18", "resnet50")):
            label.click()
    page.click("#compare-models-run")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare-models-gallery img')].filter(i => i.complete && i.naturalWidth > 0).length >= 2",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_selector("#compare-models-table table", timeout=TIMEOUT_MS)
    table = page.inner_text("#compare-models-table")
    assert "resnet18" in table and "resnet50" in table
    assert page.locator("#compare-models-gallery img").count() == 2
    page.locator("#compare-models").screenshot(path=str(ARTIFACTS / "teaching-compare-models.png"))

    # The sanity check: a progress bar while it runs, then the grid and both plots.
    open_accordion(page, "sanity")
    page.click("#sanity-run")
    page.wait_for_selector("#sanity-grid .progress-text, #sanity-grid .eta-bar, #sanity-grid .meta-text", timeout=TIMEOUT_MS)
    page.locator("#sanity").screenshot(path=str(ARTIFACTS / "teaching-sanity-running.png"))
    page.wait_for_function(
        "() => { const i = document.querySelector('#sanity-grid img'); return i && i.complete && i.naturalWidth > 1000; }",
        timeout=SANITY_TIMEOUT_MS,
    )
    page.wait_for_selector("#sanity-rank canvas, #sanity-rank svg", timeout=TIMEOUT_MS)
    page.wait_for_selector("#sanity-ssim canvas, #sanity-ssim svg", timeout=TIMEOUT_MS)
    assert "rank correlation" in page.inner_text("#sanity-summary")
    page.locator("#sanity").screenshot(path=str(ARTIFACTS / "teaching-sanity.png"))

    # The handout: a file to download and a preview.
    open_accordion(page, "handout")
    page.click("#handout-run")
    link = page.locator("#handout-file a").first
    link.wait_for(timeout=TIMEOUT_MS)
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("handout-resnet18-") and saved.suffix == ".png"
    with Image.open(saved) as handout:
        assert handout.size == PAGE_SIZE
    page.wait_for_function(
        "() => { const i = document.querySelector('#handout-preview img'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=TIMEOUT_MS,
    )
    page.locator("#handout").screenshot(path=str(ARTIFACTS / "teaching-handout.png"))
    page.screenshot(path=str(ARTIFACTS / "teaching-page.png"), full_page=True)

    assert not page.locator(".toast-body").filter(has_text="rror").count(), "no error toast"
    assert not page.errors, page.errors
    page.close()
