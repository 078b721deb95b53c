"""The handout, the model comparison, the command line for both, and their page handlers."""

from __future__ import annotations

import csv

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from core import explain, load_model
from core.__main__ import SANITY_COLUMNS, main
from core.forward import STAGES
from core.compare import LabelMismatchError, class_probability, model_comparison
from core.handout import PAGE_SIZE, PRINTABLE_COLORMAPS, fit_into, handout, handout_bytes, save_handout
from core.render import colormap_lut
from core.views import PANEL_TITLES, layer_overlays, panels
import demo.explore
from demo.teaching import TeachingTools
from demo.explore import Explorer
from tests.models import tiny_resnet
from tests.test_engine import smooth_image


@pytest.fixture(scope="module")
def resnet18():
    return load_model("resnet18", weights="random")  # offline in tests


@pytest.fixture(scope="module")
def explanation(resnet18):
    return explain(resnet18, smooth_image(300, 200, seed=5), top_k=3)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    smooth_image(160, 120, seed=8).save(path)
    return path


# ----- the handout --------------------------------------------------------------------------


def test_the_handout_page_holds_the_five_panels_and_the_four_depths(explanation):
    c = explanation.top_classes[1]
    sheet = handout(explanation, c, 3, colormap="cividis")
    assert sheet.page.size == PAGE_SIZE and sheet.page.mode == "RGB"
    view = panels(explanation, c, 3, colormap="cividis")
    depth = {stage: picture for stage, (_, picture) in zip(STAGES, layer_overlays(explanation, c, colormap="cividis"))}
    expected = {**dict(zip(PANEL_TITLES, view.as_list())), **depth}
    assert set(expected) <= set(sheet.boxes)
    for name, picture in expected.items():
        left, top, right, bottom = sheet.boxes[name]
        placed = np.asarray(sheet.page.crop((left, top, right, bottom)))
        assert np.array_equal(placed, np.asarray(fit_into(picture, (right - left, bottom - top)))), name
        assert right - left >= 300 if name in PANEL_TITLES else right - left >= 200, f"{name} is legible"
    boxes = [sheet.boxes[n] for n in expected]
    for i, a in enumerate(boxes):  # nothing drawn over anything else
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_the_handout_depends_on_the_view(explanation):
    a = np.asarray(handout(explanation, explanation.top_classes[0], 4).page)
    b = np.asarray(handout(explanation, explanation.top_classes[1], 4).page)
    c = np.asarray(handout(explanation, explanation.top_classes[0], 4, colormap="viridis").page)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("name", PRINTABLE_COLORMAPS)
def test_printable_colormaps_grow_lighter_all_the_way(name):
    """Printed in grey, a heatmap stays readable only if lightness rises with the value."""
    lightness = np.asarray(Image.fromarray(colormap_lut(name)[None]).convert("L"))[0].astype(int)
    assert (np.diff(lightness) >= 0).all()
    assert lightness[-1] - lightness[0] > 150


def test_the_handout_saves_as_png_and_pdf(explanation, tmp_path):
    sheet = handout(explanation, explanation.top_classes[0])
    png = save_handout(sheet, tmp_path / "page.png")
    pdf = save_handout(sheet, tmp_path / "page.pdf")
    with Image.open(png) as picture:
        assert picture.size == PAGE_SIZE
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.read_bytes().count(b"/Type /Page\n") + pdf.read_bytes().count(b"/Type /Page ") + pdf.read_bytes().count(b"/Type/Page") >= 1
    with pytest.raises(ValueError, match="png or a pdf"):
        handout_bytes(sheet, "gif")


# ----- model against model ------------------------------------------------------------------


def test_models_are_compared_on_one_class_with_their_own_probability(resnet18, explanation):
    other = explain(load_model("resnet34", weights="random"), explanation.image, top_k=3)
    c = 500  # outside both top-3s: matched by index, computed on demand
    views = model_comparison([explanation, other], c, colormap="jet")
    assert [v.model for v in views] == ["resnet18", "resnet34"]
    for view, e in zip(views, (explanation, other)):
        expected = torch.softmax(e.logits.double(), 0)[c].item()
        assert view.probability == pytest.approx(expected) == class_probability(e, c)
        assert view.overlay.shape == (200, 300, 3)
        assert view.stage.startswith("layer4 · 7×")
        assert view.top == e.predictions[0]
    assert not np.array_equal(views[0].overlay, views[1].overlay)


def test_a_model_with_other_labels_is_refused(explanation):
    own = tiny_resnet(num_classes=3).eval()
    theirs = explain(own, explanation.image, top_k=1)
    with pytest.raises(LabelMismatchError, match="own 3 labels"):
        model_comparison([explanation, theirs], 1)


# ----- the command line ---------------------------------------------------------------------


def test_the_sanity_command_writes_the_grid_and_the_figures(photo, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sanity", str(photo), "--model", "resnet18", "--weights", "random", "--methods", "gradcam", "guided_backprop", "--out", str(out)]) == 0
    with Image.open(out / "photo_sanity.png") as grid:
        assert grid.width > 7 * 160 and grid.height > 2 * 160
    with open(out / "photo_sanity.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == SANITY_COLUMNS
    assert len(rows) == 7 * 2
    assert [r["randomised"] for r in rows[::2]] == ["original", "head", "layer4", "layer3", "layer2", "layer1", "stem"]
    assert float(rows[0]["ssim"]) == 1.0 and float(rows[-1]["ssim"]) < 1.0
    assert "guided_backprop" in capsys.readouterr().out


def test_explain_with_handout_keeps_the_old_usage_and_adds_the_page(photo, tmp_path):
    out = tmp_path / "out"
    assert main([str(photo), "--model", "resnet18", "--weights", "random", "--out", str(out)]) == 0
    written = {p.name for p in (out / "photo").iterdir()}
    assert any(n.endswith("_strip.png") for n in written) and not any("handout" in n for n in written)
    assert main([str(photo), "--model", "resnet18", "--weights", "random", "--out", str(out), "--handout", "--handout-format", "pdf"]) == 0
    pages = [p for p in (out / "photo").iterdir() if p.name.endswith("_handout.pdf")]
    assert len(pages) == 1 and pages[0].read_bytes().startswith(b"%PDF")


def test_the_sanity_command_reports_a_bad_image(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert main(["sanity", str(bad), "--model", "resnet18", "--weights", "random", "--out", str(tmp_path)]) == 1
    assert "notes.png" in capsys.readouterr().err


# ----- the page's handlers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools():
    return TeachingTools(Explorer())  # offline: every model falls back to random weights


def test_compare_models_shows_each_model_and_keeps_them_in_the_session_cache(tools, photo, monkeypatch):
    passes = []
    first_pass = demo.explore._explain_on_device
    monkeypatch.setattr(demo.explore, "_explain_on_device", lambda model, *rest: (passes.append(model), first_pass(model, *rest))[1])
    gallery, table = tools.on_compare_models(str(photo), "resnet18", ["resnet34", "resnet18"], None, 3, "jet", 0.5)
    captions = [item["caption"] for item in gallery.value]
    assert [caption.split(" · ")[0] for caption in captions] == ["resnet18", "resnet34"], "in the dropdown's order"
    assert "resnet34" in table and "%" in table
    assert len(passes) == 2, "one first pass per model"
    for name in ("resnet34", "resnet18"):  # going back to the main view with either model
        tools.explorer.on_new_input(str(photo), name, 3)
    tools.on_compare_models(str(photo), "resnet34", ["resnet34", "resnet18"], 7, 3, "jet", 0.5)
    assert len(passes) == 2, "every later view came from the session cache"
    with pytest.raises(gr.Error, match="two or three"):
        tools.on_compare_models(str(photo), "resnet18", ["resnet18"], None, 3, "jet", 0.5)


def test_the_handout_handler_returns_a_file_and_a_preview(tools, photo):
    path, preview = tools.on_handout(str(photo), "resnet18", 2, None, 3, "jet", 0.5, False, "gradcam", "viridis", "PDF")
    assert path.endswith("-layer2.pdf") and open(path, "rb").read(4) == b"%PDF"
    with Image.open(preview) as picture:
        assert picture.size == PAGE_SIZE


def test_the_sanity_handler_fills_the_grid_the_plots_and_the_summary(tools, photo):
    grid, rank, ssim, summary = tools.on_sanity(str(photo), "resnet18", 4, None, 3, progress=lambda *a, **k: None)
    with Image.open(grid) as picture:
        assert picture.width > 7 * 160
    assert set(ssim["randomised down to"]) == {"original", "head", "layer4", "layer3", "layer2", "layer1", "stem"}
    assert set(ssim["method"]) == {"Grad-CAM", "Guided backprop", "Guided Grad-CAM"}
    assert len(rank) == len(ssim) == 7 * 3
    assert "rank correlation" in summary and "untrained" in summary
