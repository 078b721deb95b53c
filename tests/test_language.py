"""The page's words in every language: complete, filled in the same way, and chosen per browser."""

from __future__ import annotations

import dataclasses
import os
import string

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from core.handout import ENGLISH as ENGLISH_HANDOUT, PAGE_SIZE, HandoutWords
from demo import texts
from demo.explore import Explorer
from demo.pictures import ServerPictures
from demo.status import layer_positions
from demo.language import ENGLISH, I18N, LANGUAGES, font_for, language_of, sentences, tr, words_for
from demo.teaching import TeachingTools, handout_language
from tests.conftest import IN_CI
from tests.pagehelpers import ARTIFACTS
from tests.test_engine import smooth_image

OTHERS = [code for code in LANGUAGES if code != ENGLISH]


def request(accept_language: str) -> gr.Request:
    return gr.Request(headers={"accept-language": accept_language}, session_hash=f"language-{accept_language}")


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def handout_texts(words: HandoutWords) -> list[str]:
    """Every sentence of the handout's, the panels' (title, meaning) pairs flattened."""
    flat = []
    for value in dataclasses.astuple(words):
        flat.extend(text for pair in value for text in pair) if isinstance(value, tuple) else flat.append(value)
    return flat


def require_korean_font() -> str:
    """Hangul needs a font (Debian's fonts-nanum): in CI a missing one is a failure, elsewhere a skip."""
    font = font_for("ko")
    if font is None:
        if IN_CI:
            pytest.fail("no font covers Korean: .ci/run should install Debian's fonts-nanum")
        pytest.skip("no font covers Korean (apt-get install -y fonts-nanum)")
    return font


def test_korean_is_offered():
    assert "ko" in LANGUAGES


@pytest.mark.parametrize("code", OTHERS)
def test_every_english_text_exists_in_each_language_with_the_same_fields(code):
    words = LANGUAGES[code]
    english = sentences(texts)
    theirs = sentences(words)
    assert sorted(english) == sorted(theirs), "the same names, no more and no fewer"
    for name, text in english.items():
        assert theirs[name].strip(), f"{code}: {name} is empty"
        assert fields(theirs[name]) == fields(text), f"{code}: {name} fills in other fields than the English"
    assert isinstance(words.HANDOUT, HandoutWords)
    for english_text, text in zip(handout_texts(ENGLISH_HANDOUT), handout_texts(words.HANDOUT), strict=True):
        assert text.strip() and fields(text) == fields(english_text), f"{code}: {text!r}"


def test_the_page_is_sent_the_fixed_texts_only():
    """gr.I18n's message format would read {fields} as its own: those are filled in by handlers."""
    for code, table in I18N.translations.items():
        assert table and not any("{" in text for text in table.values()), code
    assert set(I18N.translations["ko"]) == set(I18N.translations[ENGLISH])
    assert tr("MODEL_LABEL").key == "MODEL_LABEL"
    with pytest.raises(KeyError):
        tr("NO_SUCH_TEXT")
    with pytest.raises(KeyError):
        tr("STATUS")  # has fields


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ko-KR", "ko"),
        ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
        ("en-US,en;q=0.9,ko;q=0.8", "en"),
        ("fr-FR,fr;q=0.9", "en"),
        ("fr-FR,ko;q=0.5", "ko"),
        ("de;q=0.9, KO;q=0.95", "ko"),
        ("ko;q=abc, en", "en"),
        ("", "en"),
    ],
)
def test_the_language_is_the_browsers_first_one_the_page_speaks(header, language):
    assert language_of(request(header)) == language
    assert words_for(request(header)) is LANGUAGES[language]


def test_a_direct_call_is_answered_in_english():
    assert language_of(None) == language_of(gr.Request(session_hash="no-headers")) == ENGLISH


@pytest.fixture(scope="module")
def explorer():
    return Explorer()  # offline in tests: random weights


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    smooth_image(160, 120, seed=4).save(path)
    return str(path)


def test_the_status_line_predictions_and_errors_follow_the_browser(explorer, photo):
    korean = request("ko-KR")
    try:
        _, predictions, _, _, status, banner = explorer.on_new_input(photo, "resnet18", 1, request=korean)
        assert "가중치: random" in status and "맵 계산:" in status and "학습되지 않음" in status
        assert predictions["label"] == LANGUAGES["ko"].PREDICTIONS_UNTRAINED
        assert "학습되지 않은 모델" in banner["value"]
        english_status = explorer.on_new_input(photo, "resnet18", 1, request=request("en-US"))[4]
        assert "weights: random" in english_status
        with pytest.raises(gr.Error, match="먼저 이미지를 올리세요"):
            ServerPictures(explorer).on_full_size(None, "resnet18", 4, None, 1, "jet", 0.5, False, request=korean)
        assert "얕고 선명함" in layer_positions(explorer.shelf, "resnet18", words_for(korean))["info"]
    finally:
        assert explorer.completer.join(120)


def test_the_handout_is_in_the_browsers_language(explorer, photo):
    require_korean_font()
    tools = TeachingTools(explorer)
    korean = request("ko-KR")
    try:
        _, preview = tools.on_handout(photo, "resnet18", 4, None, 1, "jet", 0.5, False, "gradcam", "cividis", "PNG", request=korean)
        _, english = tools.on_handout(photo, "resnet18", 4, None, 1, "jet", 0.5, False, "gradcam", "cividis", "PNG")
    finally:
        assert explorer.completer.join(120)
    with Image.open(preview) as page, Image.open(english) as reference:
        assert page.size == reference.size == PAGE_SIZE
        pixels, english_pixels = np.asarray(page), np.asarray(reference)
        ARTIFACTS.mkdir(exist_ok=True)
        page.save(ARTIFACTS / "handout-ko.png")
    assert not np.array_equal(pixels[:200], english_pixels[:200]), "the title is another text"


def test_without_a_font_for_its_letters_the_handout_stays_english(monkeypatch):
    font_for.cache_clear()
    monkeypatch.setenv("PATH", os.devnull)  # no fontconfig: no font is found
    try:
        assert handout_language(request("ko-KR")) == dict(words=ENGLISH_HANDOUT, font=None)
        assert handout_language(None) == dict(words=ENGLISH_HANDOUT, font=None)
    finally:
        font_for.cache_clear()
