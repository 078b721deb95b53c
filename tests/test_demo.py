"""The page's event handlers, called directly: caching, errors, sessions."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.utils import get_upload_folder
from PIL import Image

from core.forward import Twin
from demo.session import ExplanationCache
from demo.common import DISPLAY_SIDE, PANEL_SIDE
from demo.explore import Explorer
from demo.pictures import ServerPictures
from tests.test_engine import smooth_image

@pytest.fixture(scope="module")
def explorer():
    return Explorer()  # offline in tests: ImageNet weights are missing, so it falls back to random


@pytest.fixture(scope="module")
def pictures(explorer):
    return ServerPictures(explorer)


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


def pixels(path: str) -> np.ndarray:
    """Server-rendered panels are PNG files; they must decode to exactly what was rendered."""
    assert path.endswith(".png")
    return np.asarray(Image.open(path))


def new_input(explorer, image, model="resnet18", top_k=5, method="gradcam", **kwargs):
    return explorer.on_new_input(image, model, top_k, method, **kwargs)


def rest(explorer, image, model="resnet18", top_k=5, method="gradcam") -> list[dict]:
    return list(explorer.on_rest(image, model, top_k, method))


def need(explorer, image, class_idx, method="gradcam", model="resnet18", top_k=5) -> dict:
    return explorer.on_need(image, model, top_k, gr.SelectData(None, {"index": class_idx, "value": method}))


def held_classes(*payloads: dict, method: str = "gradcam") -> set[int]:
    """The classes whose maps and guided backprop a page holds after these payloads."""
    maps = {int(name.split("/")[1]) for p in payloads for name in p["maps"] if name.startswith(f"{method}/")}
    return maps & {int(c) for p in payloads for c in p["guided"]}


def test_large_uploads_are_explained_at_display_size(explorer, pictures, tmp_path):
    path = tmp_path / "big.jpg"
    smooth_image(2000, 1000, seed=4).save(path)
    assert new_input(explorer, str(path))[0]["size"] == [PANEL_SIDE, PANEL_SIDE // 2], "the page's panels at display size"
    files = pictures.on_full_size(str(path), "resnet18", 4, None, 5, "jet", 0.5, False)["value"]
    assert [pixels(f).shape for f in files] == [(DISPLAY_SIDE // 2, DISPLAY_SIDE, 3)] * 5, "full resolution on demand"
    assert files[1].endswith("-layer4.png") and "heatmap" in files[1]


def test_the_download_writes_no_file_but_those_it_hands_out(explorer, pictures, tmp_path, monkeypatch):
    """Gradio's delete_cache ages out only the files handed to a component: any other would stay."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))  # an earlier run's files would not count as new
    path = tmp_path / "download.png"
    smooth_image(500, 300, seed=6).save(path)
    new_input(explorer, str(path))
    folder = Path(get_upload_folder())
    before = set(folder.rglob("*"))
    files = pictures.on_full_size(str(path), "resnet18", 2, None, 3, "viridis", 0.4, False)["value"]
    written = {p for p in set(folder.rglob("*")) - before if p.is_file()}
    assert len(files) == 5 and written == {Path(f) for f in files}


def stages_sent(payload: dict, class_idx: int, method: str = "gradcam") -> list[bool]:
    return [stage is not None for stage in payload["maps"].get(f"{method}/{class_idx}/0", [None] * 4)]


def test_a_first_view_sends_what_its_pass_has_and_the_completion_the_rest_with_no_other_pass(explorer, tmp_path, forward_calls):
    photo = str(tmp_path / "fresh.png")
    smooth_image(400, 300, seed=5).save(photo)
    outputs = new_input(explorer, photo)
    payload, classes = outputs[0], [value for _, value in outputs[2]["choices"]]
    assert payload["size"] == [384, 288] and payload["box"] is None
    assert payload["guided"] == {}, "guided backprop comes with the completion: its backward pass cost more than the forward"
    assert all(stages_sent(payload, c) == [False, False, False, True] for c in classes), "layer4 of every class: its closed form"
    assert f"gradcam/{classes[0]}/1" in payload["maps"], "and the counterfactuals"
    assert outputs[3] == classes[0] and "untrained" in outputs[4]
    pieces = rest(explorer, photo)
    assert [list(p["guided"]) for p in pieces] == [x for c in classes for x in ([str(c)], [])], "each class's guided map, once"
    assert [stages_sent(p, c) for p, c in zip(pieces[1::2], classes)] == [[True] * 4] * len(classes), "then every stage, top-k order"
    assert all(p["maps"] == {} for p in pieces[::2])
    assert all(p["key"] == payload["key"] and "original" not in p for p in pieces)
    assert len(forward_calls) == 3, "the first view (a forward pass alone), the top class whole, the rest of the top-k"

    outside = next(c for c in range(1000) if c not in classes)
    assert held_classes(need(explorer, photo, outside)) == {outside}
    need(explorer, photo, outside)
    assert len(forward_calls) == 4, "a class outside the top-k costs one pass, once"


def test_a_first_view_away_from_layer4_has_the_top_class_at_every_stage(explorer, tmp_path):
    photo = str(tmp_path / "layer2.png")
    smooth_image(300, 300, seed=6).save(photo)
    payload = new_input(explorer, photo, layer=2)[0]
    top = payload["predictions"][0]["index"]
    assert stages_sent(payload, top) == [True] * 4 and payload["guided"] == {}


def test_the_payload_holds_the_servers_own_numbers(explorer, photo):
    from core.payload import GUIDED_BITS, from_levels, unpack_array, unpack_levels
    from core.views import display_guided

    payload = new_input(explorer, photo)[0]
    pieces = rest(explorer, photo)
    top_class_piece = pieces[1]
    explanation = explorer.explanation(photo, "resnet18", 5, "direct-call")
    c = explanation.top_classes[0]
    for layer, stage in enumerate(top_class_piece["maps"][f"gradcam/{c}/1"], start=1):
        raw = explanation.cam(c, layer, raw=True, counterfactual=True)
        np.testing.assert_array_equal(unpack_array(stage["values"], np.float32, tuple(stage["grid"])), raw)
    guided = next(p["guided"][str(c)] for p in pieces if str(c) in p["guided"])
    size = tuple(payload["size"])
    decoded = from_levels(unpack_levels(guided["levels"], (size[1], size[0], 3)), guided["lo"], guided["hi"], GUIDED_BITS)
    exact = display_guided(explanation, c, size)
    spread = np.percentile(np.abs(exact - exact.mean()), 99)
    assert np.abs(decoded - exact).max() <= (guided["hi"] - guided["lo"]) / 4095, "one 12-bit level at most"
    assert (guided["hi"] - guided["lo"]) == pytest.approx(8 * spread, rel=1e-5)


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
    assert new_input(explorer, photo)[0]["size"] == [384, 256]


def test_no_image_clears_the_page_without_an_error(explorer):
    outputs = new_input(explorer, None)
    assert outputs[0] is None and outputs[3] is None
    assert rest(explorer, None) == [gr.skip()]


def test_api_handler_explains_a_chosen_class(pictures, photo):
    top = pictures.api_explain(photo, "resnet18", 4, None, 3)
    chosen = pictures.api_explain(photo, "resnet18", 4, 7, 3)
    assert len(top) == 7 and len(top[5]) == 3
    assert not np.array_equal(pixels(top[1]), pixels(chosen[1]))


def test_sessions_are_kept_apart_and_freed_on_unload(explorer, photo):
    alice, bob = gr.Request(session_hash="alice"), gr.Request(session_hash="bob")
    new_input(explorer, photo, request=alice)
    new_input(explorer, photo, request=bob)
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


def test_an_explanation_asked_for_while_it_is_being_made_is_made_once():
    cache, made, started = ExplanationCache(), [], threading.Event()

    def make():
        made.append(1)
        started.set()
        time.sleep(0.3)
        return object()

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(cache.get_or_make, "s", ("k", "m", 5), make)
        assert started.wait(10)
        others = [pool.submit(cache.get_or_make, "s", ("k", "m", 5), make) for _ in range(2)]
        assert {id(f.result()) for f in [first, *others]} == {id(first.result())} and len(made) == 1

    def fail():
        time.sleep(0.2)
        raise ValueError("no")

    with ThreadPoolExecutor(2) as pool:
        failing = pool.submit(cache.get_or_make, "s", ("bad", "m", 5), fail)
        time.sleep(0.05)
        waiting = pool.submit(cache.get_or_make, "s", ("bad", "m", 5), make)
        for future in (failing, waiting):
            with pytest.raises(ValueError, match="no"):
                future.result()
    assert cache.get_or_make("s", ("bad", "m", 5), lambda: "made") == "made", "an error is not kept"


def test_a_first_view_asked_twice_at_once_runs_one_pass_and_sends_once(explorer, tmp_path, forward_calls):
    """Chromium's image control fires its change event twice when a photo replaces another: the
    second first view and its rest must neither run the network again nor resend what the page holds."""
    photo = str(tmp_path / "twice.png")
    smooth_image(300, 200, seed=11).save(photo)
    request = gr.Request(session_hash="twice")
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: explorer.on_new_input(photo, "resnet18", 3, "gradcam", request=request), range(2)))
    sent = [a for a in answers if not isinstance(a[0], dict) or a[0].get("__type__") != "update"]
    assert len(sent) == 1 and sent[0][0]["key"], "one payload; the other answer changes nothing on the page"
    skipped = next(a for a in answers if a is not sent[0])
    assert all(output == gr.skip() for output in skipped)
    assert explorer.completer.join(120)
    assert len(forward_calls) == 3, "one first view's pass, and its completion's two (the top class, the rest)"

    streaming = explorer.on_rest(photo, "resnet18", 3, "gradcam", request=request)
    first_piece = next(streaming)
    assert list(explorer.on_rest(photo, "resnet18", 3, "gradcam", request=request)) == [gr.skip()], "a second rest while one streams"
    pieces = [first_piece, *streaming]
    assert len(pieces) == 6 and all(p["key"] == sent[0][0]["key"] for p in pieces)
    assert len(rest_after := list(explorer.on_rest(photo, "resnet18", 3, "gradcam", request=request))) == 6, "after it, a rest is answered again"
    assert rest_after == pieces
    assert explorer.on_new_input(photo, "resnet18", 3, "gradcam", request=request)[0]["key"] == sent[0][0]["key"], "and a first view"
    assert len(forward_calls) == 3, "and no pass since"


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


def test_another_method_travels_for_the_class_on_screen_first_without_a_network_pass(explorer, photo, forward_calls):
    classes = [value for _, value in new_input(explorer, photo)[2]["choices"]]
    rest_pieces = rest(explorer, photo)
    runs = len(forward_calls)
    pieces = list(explorer.on_method(photo, "resnet18", 5, "layercam", classes[2]))
    assert [held_classes(p, method="layercam") for p in pieces] == [{classes[2]}] + [{c} for c in classes if c != classes[2]]
    assert all(p["method"] == "layercam" for p in pieces)
    # The viewer's method follows the answer to the change alone, not a late piece of the rest.
    assert [p.get("switchMethod", False) for p in pieces] == [True] + [False] * (len(pieces) - 1)
    assert not any(p.get("switchMethod") for p in rest_pieces)
    assert len(forward_calls) == runs, "gradient methods reuse the stored gradients"
    (score,) = explorer.on_method(photo, "resnet18", 5, "scorecam", None)
    assert set(score["maps"]) == {f"scorecam/{classes[0]}/0"}, "a perturbation method: the class on screen, and no counterfactual"
    assert rest(explorer, photo, method="scorecam") == [gr.skip()]


def test_compare_view_scores_every_method(pictures, photo):
    from core import METHODS

    tiles, table, deletion, insertion = pictures.on_compare(photo, "resnet18", 4, None, 5, "jet", 0.5)
    assert len(tiles) == len(METHODS)
    for picture, caption in tiles:
        assert pixels(picture).shape == (320, 480, 3) and " del " in caption and " ins " in caption
    assert table.count("\n|") == len(METHODS) + 2, "header, rule and a row per method"
    assert set(deletion["method"]) == set(insertion["method"]) and len(set(deletion["method"])) == len(METHODS)
    assert deletion["class probability"].between(0, 1).all()


def test_png_files_are_lossless_and_shared_by_content():
    from demo.files import png_file

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    first, second = png_file(picture), png_file(picture.copy())
    assert first == second
    np.testing.assert_array_equal(np.asarray(Image.open(first)), picture)


def test_precision_is_chosen_per_session_and_named_in_the_status(explorer, photo):
    from demo.common import DEFAULT_PRECISION, PRECISION_NAMES

    carol, dave = gr.Request(session_hash="carol"), gr.Request(session_hash="dave")
    explorer.on_precision("float32", request=carol)
    exact = new_input(explorer, photo, request=carol)
    default = new_input(explorer, photo, request=dave)
    assert "maps in exact (float32)" in exact[4]
    assert f"maps in {PRECISION_NAMES[DEFAULT_PRECISION]}" in default[4]
    if DEFAULT_PRECISION != "float32":
        assert exact[0]["key"] != default[0]["key"], "another precision is another explanation for the page"
    assert explorer.explanation(photo, "resnet18", 5, "carol").precision == "float32"
    with pytest.raises(gr.Error, match="precision"):
        explorer.on_precision("float16", request=carol)
    explorer.on_unload(carol)
    assert explorer.precision("carol") == DEFAULT_PRECISION
