"""The page's event handlers, called directly: caching, errors, sessions."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from core.forward import Twin
from demo.session import ExplanationCache
from demo.ui import DISPLAY_SIDE, PANEL_SIDE, Explorer
from tests.test_engine import smooth_image

SETTINGS = dict(colormap="jet", opacity=0.5, counterfactual=False)


@pytest.fixture(scope="module")
def explorer():
    return Explorer()  # offline in tests: ImageNet weights are missing, so it falls back to random


@pytest.fixture(autouse=True)
def quiet_background(explorer):
    """Background completions of one test must not run inside another's pass count."""
    assert explorer.completer.join(120)
    yield
    assert explorer.completer.join(120)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    smooth_image(480, 320, seed=3).save(path)
    return str(path)


@pytest.fixture
def forward_calls(monkeypatch):
    calls = []
    original = Twin.forward
    monkeypatch.setattr(Twin, "forward", lambda self, x, rule: (calls.append(x.shape), original(self, x, rule))[1])
    return calls


def pixels(path: str | dict) -> np.ndarray:
    """The page gets PNG files; they must decode to exactly what was rendered."""
    if isinstance(path, dict):  # gr.update(value=..., label=...): the heatmap's caption names the method
        path = path["value"]
    assert path.endswith(".png")
    return np.asarray(Image.open(path))


def new_input(explorer, image, model="resnet18", layer=4, top_k=5, **settings):
    return explorer.on_new_input(image, model, layer, top_k, **{**SETTINGS, **settings})


def view(explorer, image, layer, class_idx, model="resnet18", top_k=5, **settings):
    return explorer.on_view(image, model, layer, class_idx, top_k, **{**SETTINGS, **settings})


def test_a_new_image_shows_five_panels_predictions_and_the_untrained_status(explorer, photo):
    outputs = new_input(explorer, photo)
    pictures, predictions, radio, any_class, status, banner = [pixels(p) for p in outputs[:5]], *outputs[5:]
    for picture in pictures:
        assert picture.shape == (256, 384, 3) and picture.dtype == np.uint8, "drawn at PANEL_SIDE for the page"
    assert not np.array_equal(pictures[1], pictures[2]), "heatmap and overlay differ"
    assert len(predictions["value"]) == 5 and "untrained" in predictions["label"]
    assert len(radio["choices"]) == 5 and radio["value"] == any_class
    assert "%" in radio["choices"][0][0]
    assert "resnet18" in status and "untrained" in status
    assert banner["visible"] and "python -m core.weights download resnet18" in banner["value"]


def test_large_uploads_are_explained_at_display_size(explorer, tmp_path):
    path = tmp_path / "big.jpg"
    smooth_image(2000, 1000, seed=4).save(path)
    pictures = [pixels(p) for p in new_input(explorer, str(path))[:5]]
    assert pictures[0].shape == (PANEL_SIDE // 2, PANEL_SIDE, 3), "the page's panels at display size"
    files = explorer.on_full_size(str(path), "resnet18", 4, None, 5, **SETTINGS)["value"]
    assert [pixels(f).shape for f in files] == [(DISPLAY_SIDE // 2, DISPLAY_SIDE, 3)] * 5, "full resolution on demand"
    assert files[1].endswith("-layer4.png") and "heatmap" in files[1]


def test_switching_layer_class_colormap_opacity_or_counterfactual_never_runs_the_network(explorer, tmp_path, forward_calls):
    photo = str(tmp_path / "fresh.png")
    smooth_image(400, 300, seed=5).save(photo)
    outputs = new_input(explorer, photo)
    classes = [value for _, value in outputs[6]["choices"]]
    explorer.on_depth(photo, "resnet18", classes[0], 5, **SETTINGS)  # the page runs this right after
    runs = len(forward_calls)
    assert runs == 2, "the first view and the completion of the top-k: two passes in all"

    heatmaps = {}
    for layer in (1, 2, 3, 4):
        for c in classes[:3]:
            heatmaps[layer, c] = pixels(view(explorer, photo, layer, c)[1])
    view(explorer, photo, 2, classes[1], colormap="cividis")
    view(explorer, photo, 2, classes[1], opacity=0.9)
    view(explorer, photo, 2, classes[1], counterfactual=True)
    explorer.on_depth(photo, "resnet18", classes[2], 5, **SETTINGS)
    assert len(forward_calls) == runs, "cached: no forward pass"
    assert not np.array_equal(heatmaps[1, classes[0]], heatmaps[4, classes[0]])
    assert not np.array_equal(heatmaps[3, classes[0]], heatmaps[3, classes[1]])

    outside = next(c for c in range(1000) if c not in classes)
    first = view(explorer, photo, 3, outside)
    second = view(explorer, photo, 1, outside)
    assert len(forward_calls) == runs + 1, "a class outside the top-k costs one pass, once"
    assert first[-1] == outside and first[-2] is None, "the radio clears, the dropdown keeps the class"
    assert second[-1] == outside


def test_bad_uploads_become_readable_errors_and_the_next_request_works(explorer, photo, tmp_path):
    pdf = tmp_path / "paper.png"
    pdf.write_bytes(b"%PDF-1.7\n1 0 obj << >> endobj\n")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path, words in ((pdf, "PDF"), (empty, "empty"), (tmp_path / "gone.png", "No such file")):
        with pytest.raises(gr.Error, match=words):
            new_input(explorer, str(path))
    with pytest.raises(gr.Error, match="unknown model"):
        new_input(explorer, photo, model="vgg16")
    assert pixels(new_input(explorer, photo)[0]).shape == (256, 384, 3)


def test_no_image_clears_the_page_without_an_error(explorer):
    outputs = new_input(explorer, None)
    assert outputs[:5] == [None] * 5
    assert view(explorer, None, 2, 3)[:5] == [None] * 5


def test_api_handler_explains_a_chosen_class(explorer, photo):
    top = explorer.api_explain(photo, "resnet18", 4, None, 3)
    chosen = explorer.api_explain(photo, "resnet18", 4, 7, 3)
    assert len(top) == 7 and len(top[5]) == 3
    assert not np.array_equal(pixels(top[1]), pixels(chosen[1]))


def test_sessions_are_kept_apart_and_freed_on_unload(explorer, photo):
    alice, bob = gr.Request(session_hash="alice"), gr.Request(session_hash="bob")
    explorer.on_new_input(photo, "resnet18", 4, 5, **SETTINGS, request=alice)
    explorer.on_new_input(photo, "resnet18", 4, 5, **SETTINGS, request=bob)
    assert {"alice", "bob"} <= explorer.cache.sessions()
    explorer.on_unload(alice)
    assert "alice" not in explorer.cache.sessions() and "bob" in explorer.cache.sessions()


def test_the_explanation_cache_is_bounded_per_session_and_overall():
    cache = ExplanationCache(per_session=2, total=3)
    for n in range(3):
        cache.put("a", (str(n), "m", 5), object())
    assert cache.get("a", ("0", "m", 5)) is None and cache.get("a", ("2", "m", 5)) is not None
    cache.put("b", ("x", "m", 5), object())
    cache.put("c", ("y", "m", 5), object())
    assert len(cache) == 3
    assert cache.get("a", ("1", "m", 5)) is None, "the least recently used entry went first"


def test_same_picture_shares_one_explanation(explorer, tmp_path, forward_calls):
    image = smooth_image(200, 150, seed=9)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    image.save(first)
    image.save(second)
    new_input(explorer, str(first), top_k=2)
    assert explorer.completer.join(120)
    runs = len(forward_calls)
    new_input(explorer, str(second), top_k=2)
    assert len(forward_calls) == runs
    assert Image.open(first).size == (200, 150)


def test_method_choice_changes_the_maps_without_a_network_pass(explorer, photo, forward_calls):
    new_input(explorer, photo)
    explorer.on_depth(photo, "resnet18", None, 5, **SETTINGS)
    runs = len(forward_calls)
    gradcam, layercam = view(explorer, photo, 3, None)[1], view(explorer, photo, 3, None, method="layercam")[1]
    assert (gradcam["label"], layercam["label"]) == ("Grad-CAM heatmap", "LayerCAM heatmap"), "the caption names the method"
    assert not np.array_equal(pixels(gradcam), pixels(layercam))
    assert len(forward_calls) == runs, "gradient methods reuse the stored gradients"
    with pytest.raises(gr.Error, match="counterfactual"):
        view(explorer, photo, 3, None, method="scorecam", counterfactual=True)


def test_a_new_image_streams_the_gradcam_panels_then_the_guided_ones(explorer, tmp_path):
    photo = tmp_path / "streamed.png"
    smooth_image(300, 200, seed=8).save(photo)
    first, second = list(explorer.new_input_steps(str(photo), "resnet18", 4, 5, **SETTINGS))
    assert [pixels(p).shape for p in first[:3]] == [(200, 300, 3)] * 3 and first[3] is None
    assert first[5]["value"], "the predictions come with the first step"
    assert second[:3] == [gr.skip()] * 3 and second[5:] == [gr.skip()] * 5
    assert [pixels(p).shape for p in second[3:5]] == [(200, 300, 3)] * 2


def test_a_class_change_streams_the_panels_then_the_strip_in_one_event(explorer, photo):
    classes = [value for _, value in new_input(explorer, photo)[6]["choices"]]
    panels_step, strip_step = list(explorer.view_and_strip(photo, "resnet18", 4, classes[1], 5, **SETTINGS, method="gradcam++"))
    assert panels_step[6] == classes[1] and panels_step[7] == gr.skip()
    assert panels_step[1]["label"] == "Grad-CAM++ heatmap"
    assert strip_step[:7] == [gr.skip()] * 7
    assert [caption.split(" · ")[0] for _, caption in strip_step[7]] == ["layer1", "layer2", "layer3", "layer4"]


def test_compare_view_scores_every_method(explorer, photo):
    from core import METHODS

    tiles, table, deletion, insertion = explorer.on_compare(photo, "resnet18", 4, None, 5, "jet", 0.5)
    assert len(tiles) == len(METHODS)
    for picture, caption in tiles:
        assert pixels(picture).shape == (320, 480, 3) and " del " in caption and " ins " in caption
    assert table.count("\n|") == len(METHODS) + 2, "header, rule and a row per method"
    assert set(deletion["method"]) == set(insertion["method"]) and len(set(deletion["method"])) == len(METHODS)
    assert deletion["class probability"].between(0, 1).all()


def test_png_files_are_lossless_and_shared_by_content():
    from demo.ui import png_file

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    first, second = png_file(picture), png_file(picture.copy())
    assert first == second
    np.testing.assert_array_equal(np.asarray(Image.open(first)), picture)


def test_precision_is_chosen_per_session_and_named_in_the_status(explorer, photo):
    from demo.ui import DEFAULT_PRECISION, PRECISION_NAMES

    carol, dave = gr.Request(session_hash="carol"), gr.Request(session_hash="dave")
    explorer.on_precision("float32", request=carol)
    exact = explorer.on_new_input(photo, "resnet18", 4, 5, **SETTINGS, request=carol)
    default = explorer.on_new_input(photo, "resnet18", 4, 5, **SETTINGS, request=dave)
    assert "maps in exact (float32)" in exact[8]
    assert f"maps in {PRECISION_NAMES[DEFAULT_PRECISION]}" in default[8]
    assert explorer.explanation(photo, "resnet18", 5, "carol").precision == "float32"
    with pytest.raises(gr.Error, match="precision"):
        explorer.on_precision("float16", request=carol)
    explorer.on_unload(carol)
    assert explorer.precision("carol") == DEFAULT_PRECISION
