"""Hide and see on the page: its handlers called directly, as the browser's events call them."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import demo.explore
from core import read_image
from demo.common import DISPLAY_SIDE
from demo.explore import Explorer
from demo.hide import HideAndSeeTool, painted_mask, percent, points
from tests.test_engine import smooth_image

#: One prediction: the background completion of the top-k has less to do on two cores.
TOP_K = 1
KOREAN = gr.Request(headers={"accept-language": "ko-KR,ko;q=0.9,en;q=0.8"}, session_hash="hide-ko")


@pytest.fixture(scope="module")
def tool():
    return HideAndSeeTool(Explorer())  # offline in tests: random weights


@pytest.fixture(autouse=True)
def quiet_background(tool):
    """Background completions of one test must not run inside another's pass count."""
    assert tool.explorer.completer.join(120)
    yield
    assert tool.explorer.completer.join(120)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    smooth_image(800, 400, seed=11).save(path)  # larger than DISPLAY_SIDE: the page shows it at 640×320
    return str(path)


def brushed(size: tuple[int, int], box: tuple[int, int, int, int]) -> dict:
    """The editor's value after painting the box (left, top, right, bottom) on a (width, height) picture."""
    layer = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    left, top, right, bottom = box
    layer[top:bottom, left:right] = (255, 0, 255, 255)
    background = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    return {"background": background, "layers": [layer], "composite": background}


def hide(tool, photo, editor, fill="mean", layer=4, class_idx=None, request=None):
    return tool.on_hide(photo, editor, "resnet18", layer, class_idx, TOP_K, fill, "jet", 0.5, request=request)


def test_the_painted_layer_becomes_the_mask_at_the_pictures_size():
    editor = brushed((200, 100), (20, 10, 60, 50))
    assert painted_mask(editor, (200, 100)).sum() == 40 * 40
    half = painted_mask(editor, (100, 50))  # a browser may hand the layer back at another scale
    assert half.shape == (50, 100) and half[5:25, 10:30].all() and half.sum() == 20 * 20
    assert not painted_mask(None, (100, 50)).any()
    assert not painted_mask({"background": None, "layers": [], "composite": None}, (100, 50)).any()


def test_probabilities_and_their_change_are_said_as_a_student_reads_them():
    assert (percent(0.62), percent(0.08), points(0.54)) == ("62%", "8%", "−54")
    assert (percent(0.004), points(0.004), points(-0.031)) == ("0.4%", "−0.4", "+3")
    assert points(0.0) == points(0.00004) == "±0"


def test_a_new_image_gives_the_editor_the_picture_the_network_sees_and_clears_the_results(tool, photo):
    editor, *shown = tool.on_image(photo)
    picture = np.asarray(read_image(photo, max_side=DISPLAY_SIDE))
    assert np.array_equal(editor["background"], picture) and editor["background"].shape == (320, 640, 3)
    assert shown == ["", None, None, None]
    assert tool.on_image(None)[0] is None


def test_hiding_the_painted_box_explains_the_edited_image_beside_the_original(tool, photo):
    session = tool.explorer.explanation(photo, "resnet18", TOP_K, "direct-call")
    editor = brushed((640, 320), (100, 60, 300, 260))
    summary, before, after, top = hide(tool, photo, editor)
    with Image.open(before) as b, Image.open(after) as a:
        before_pixels, after_pixels = np.asarray(b), np.asarray(a)
    assert before_pixels.shape == after_pixels.shape == (320, 640, 3)
    assert not np.array_equal(before_pixels[60:260, 100:300], after_pixels[60:260, 100:300]), "the hidden box is shown hidden"
    label = session.info.categories[session.top_classes[0]]
    assert summary.startswith(f"**{label}**: ") and "→" in summary and "points" in summary
    assert "Hidden: 20% of the image, as mean colour (zero input)" in summary  # 200×200 of 640×320 ≈ 19.5%
    assert len(top) == 5 and all(0 <= p <= 1 for p in top.values())


def test_the_automatic_version_hides_the_hottest_share_and_reuses_the_cached_original(tool, photo, monkeypatch):
    first_passes = []
    original = demo.explore._explain_on_device
    monkeypatch.setattr(demo.explore, "_explain_on_device", lambda *args: (first_passes.append(args), original(*args))[1])
    for share in (0.1, 0.5):
        summary, before, after, top = tool.on_hide_hottest(photo, "resnet18", 3, None, TOP_K, "blur", share, "jet", 0.5)
        assert f"Hidden: {share:.0%} of the image, as blur. Grad-CAM at layer3" in summary
    assert len(first_passes) <= 1, "the original is explained once, then taken from the session cache"


def test_the_class_on_screen_is_the_one_followed(tool, photo):
    summary = hide(tool, photo, brushed((640, 320), (0, 0, 320, 320)), class_idx=7)[0]
    assert summary.startswith("**cock**: "), "ImageNet's class 7, whatever the top prediction"


def test_bad_requests_get_readable_errors_in_the_browsers_language(tool, photo):
    with pytest.raises(gr.Error, match="Nothing is painted yet"):
        hide(tool, photo, {"background": None, "layers": [], "composite": None})
    with pytest.raises(gr.Error, match="아직 칠한 곳이 없습니다"):
        hide(tool, photo, None, request=KOREAN)
    with pytest.raises(gr.Error, match="Upload an image first"):
        hide(tool, None, brushed((640, 320), (0, 0, 10, 10)))
    with pytest.raises(gr.Error, match="먼저 이미지를 올리세요"):
        hide(tool, None, None, request=KOREAN)
    with pytest.raises(gr.Error, match="unknown fill"):
        hide(tool, photo, brushed((640, 320), (0, 0, 10, 10)), fill="paint")


def test_the_summary_is_in_the_browsers_language(tool, photo):
    summary = tool.on_hide_hottest(photo, "resnet18", 4, None, TOP_K, "noise", 0.2, "jet", 0.5, request=KOREAN)[0]
    assert "%p)" in summary and "이미지의 20%를 잡음(으)로 가렸습니다" in summary
