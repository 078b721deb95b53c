"""Hide and see, and the page in Korean, in real headless Chromium.

Screenshots land in artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import re

import pytest

from tests.pagehelpers import ARTIFACTS, ROOT, TIMEOUT_MS, browser, open_page, upload  # noqa: F401 (the browser fixture)
from tests.test_language import require_korean_font

pytestmark = pytest.mark.browser

EXAMPLE = ROOT / "assets" / "chelsea_cat.jpg"
#: "tabby: 62% → 8% (−54 points)", as the page renders the summary's Markdown.
RESULT = re.compile(r"^(?P<label>.+): (?P<before>[\d.]+)% → (?P<after>[\d.]+)% \((?P<points>[−+±][\d.]+) points\)$", re.MULTILINE)


def choose_resnet18(page) -> None:
    """The fastest model: hide and see adds a pass to a shared two-core machine."""
    page.locator("#model input").click()
    page.locator('#model li[aria-label^="resnet18 "]').click()


def wait_for_pictures(page, *selectors: str) -> None:
    page.wait_for_function(
        "sel => sel.every(s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })",
        arg=[f"{s} img" for s in selectors],
        timeout=TIMEOUT_MS,
    )


def paint(page, canvas_selector: str) -> None:
    """Brush strokes across the middle of the picture: the brush is the editor's tool once it holds one."""
    box = page.locator(canvas_selector).last.bounding_box()
    left, top = box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.35
    for n in range(8):
        y = top + n * box["height"] * 0.04
        page.mouse.move(left, y)
        page.mouse.down()
        page.mouse.move(left + box["width"] * 0.3, y, steps=6)
        page.mouse.up()


def test_hide_and_see_by_painting_and_by_the_hottest_pixels(browser, app_url):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, app_url)
    choose_resnet18(page)
    upload(page, EXAMPLE)
    page.locator("#hide > button").first.click()
    # The editor holds the picture once the placeholder has gone.
    page.wait_for_selector("#hide-editor canvas", timeout=TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector('#hide-editor').innerText.includes('draw tool')", timeout=TIMEOUT_MS)

    paint(page, "#hide-editor canvas")
    page.click("#hide-run")
    wait_for_pictures(page, "#hide-before", "#hide-after")
    page.wait_for_function("() => document.querySelector('#hide-summary').innerText.includes('→')", timeout=TIMEOUT_MS)
    summary = page.inner_text("#hide-summary")
    found = RESULT.search(summary)
    assert found, summary
    change = float(found["points"].replace("−", "-").replace("±", ""))
    assert abs(float(found["after"]) - float(found["before"]) - change) <= 1, "the points are the difference, up to rounding"
    share = int(re.search(r"Hidden: (\d+)% of the image", summary)[1])
    assert 0 < share < 40, summary
    assert page.locator("#hide-top").inner_text().count("%") >= 5, "the top-5 after hiding"
    page.locator("#hide").screenshot(path=str(ARTIFACTS / "hide-painted.png"))

    # The automatic version: the map's hottest 50% (a share the brush strokes did not hide).
    page.locator("#hide-share label").filter(has_text="50%").click()
    page.click("#hide-hottest")
    page.wait_for_function("() => document.querySelector('#hide-summary').innerText.includes('Hidden: 50%')", timeout=TIMEOUT_MS)
    wait_for_pictures(page, "#hide-before", "#hide-after")
    assert RESULT.search(page.inner_text("#hide-summary"))
    page.locator("#hide").screenshot(path=str(ARTIFACTS / "hide-hottest-50.png"))

    assert not page.locator(".toast-body").filter(has_text="rror").count(), "no error toast"
    assert not page.errors, page.errors
    page.close()


def test_the_page_in_korean(browser, app_url):  # noqa: F811
    require_korean_font()
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, app_url, locale="ko-KR")
    for label in ("내 이미지", "모델", "층", "상위 k개 예측", "어떤 예측을 설명할까요?", "가리고 보기"):
        assert page.get_by_text(label, exact=False).first.is_visible(), label
    assert page.get_by_role("tab", name="탐색").count() == 1
    choose_resnet18(page)
    upload(page, EXAMPLE)
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('가중치')", timeout=TIMEOUT_MS)
    assert "맵 계산" in page.inner_text("#status")
    assert page.inner_text("#viewer-panel-0 figcaption") == "원본" and page.inner_text("#viewer-panel-1 figcaption") == "Grad-CAM 히트맵"
    # Hangul drawn in the page's own font: a font without it draws the same empty box for every letter.
    rendered = page.evaluate(
        """() => {
            const family = getComputedStyle(document.querySelector('#status')).fontFamily;
            const draw = (text) => {
                const canvas = document.createElement('canvas');
                canvas.width = 200; canvas.height = 40;
                const context = canvas.getContext('2d');
                context.font = `24px ${family}`;
                context.fillText(text, 4, 30);
                return Array.from(context.getImageData(0, 0, 200, 40).data).join(',');
            };
            return draw('가나다라') !== draw('마바사아');
        }"""
    )
    assert rendered, "Hangul renders as boxes: install a Korean font (Debian's fonts-nanum)"
    page.locator("#hide > button").first.click()
    page.get_by_text("가리고 설명하기").first.wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "page-ko.png"), full_page=True)
    assert not page.errors, page.errors
    page.close()
