"""The page's own drawing against the server's: every canvas of the viewer, read back from Chromium,
equals what core.views renders for the same view on the server.

A map that is wrong in the page would teach students something false. Requirement: at least
99.9% of the pixels within 1 level per channel, and none more than 3 levels off.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.localise import localise
from core.render import draw_box
from core.views import cam_pictures, guided_pictures, layer_overlays
from demo.common import PANEL_SIDE
from demo.session import image_digest
from tests.pagehelpers import ARTIFACTS, ROOT, browser, choose_model, draw, open_page, top_k_held, upload  # noqa: F401

pytestmark = pytest.mark.browser

PHOTO = ROOT / "assets" / "lion_and_cheetah.jpg"  # 512×256: not square
TOWER = ROOT / "assets" / "tower.jpg"  # portrait: letterboxed into ViT's square from the sides


def server_explanation(app, path, model: str):
    """The very Explanation the page was sent, from the app's session cache."""
    digest = image_digest(path)
    found = [e for (_, key), e in app.explorer.cache._entries.items() if key[0] == digest and key[1] == model]
    assert found, f"the app holds no explanation of {path.name} by {model}"
    return found[-1]


def server_view(explanation, view: dict) -> dict[str, np.ndarray]:
    """core.views' pictures for the view, at the page's display size."""
    settings = dict(colormap=view["colormap"], opacity=view["opacity"], counterfactual=view["counterfactual"], method="gradcam")
    first = cam_pictures(explanation, view["classIdx"], view["layer"], **settings, max_side=PANEL_SIDE)
    guided, product = guided_pictures(explanation, view["classIdx"], first.cam01)
    strip = layer_overlays(explanation, view["classIdx"], **settings, max_side=PANEL_SIDE)
    pictures = dict(original=first.original, heatmap=first.heatmap, overlay=first.overlay, guided_backprop=guided, guided_gradcam=product)
    pictures.update({f"layer{n}": picture for n, (_, picture) in enumerate(strip, start=1)})
    if view.get("box"):  # the paper's box on every overlay, from the map drawn there
        size = first.cam01.shape[::-1]
        for name, layer in [("overlay", view["layer"]), *((f"layer{n}", n) for n in range(1, 5))]:
            cam01 = explanation.cam(view["classIdx"], layer, counterfactual=view["counterfactual"], size=size)
            pictures[name] = draw_box(pictures[name], localise(cam01, view["threshold"]))
    return pictures


def assert_same_pixels(page_pictures: dict, server_pictures: dict, what: str) -> list[str]:
    lines = []
    for name, expected in server_pictures.items():
        drawn = page_pictures[name]
        assert drawn.shape == expected.shape, f"{what} {name}: page {drawn.shape} vs server {expected.shape}"
        difference = np.abs(drawn.astype(np.int16) - expected.astype(np.int16))
        within_one = float((difference <= 1).mean())
        lines.append(f"{what} {name}: {within_one:.5f} within 1 level, max {difference.max()}")
        assert within_one >= 0.999 and difference.max() <= 3, lines[-1]
    return lines


VIEWS = [
    {"layer": 1},
    {"layer": 2},
    {"layer": 3},
    {"layer": 4},
    {"layer": 3, "class_rank": 2, "colormap": "viridis", "opacity": 0.3},
    {"layer": 2, "colormap": "turbo", "counterfactual": True},
    {"layer": 4, "class_rank": 1, "counterfactual": True, "opacity": 0.3},
    {"layer": 2, "box": True, "threshold": 0.15},
    {"layer": 4, "class_rank": 1, "box": True, "threshold": 0.5, "colormap": "cividis"},
]


@pytest.mark.parametrize(
    "model, picture, views",
    [("resnet18", PHOTO, VIEWS), ("vit_b_16", TOWER, [VIEWS[1], VIEWS[3], VIEWS[4], VIEWS[6], VIEWS[8]])],
    ids=["resnet18-wide-photo", "vit-letterboxed"],
)
def test_every_canvas_equals_the_servers_rendering(browser, app_url, running_app, model, picture, views):  # noqa: F811
    page = open_page(browser, app_url)
    choose_model(page, model)
    upload(page, picture)
    top_k_held(page)
    explanation = server_explanation(running_app, picture, model)
    report = []
    for settings in views:
        view = {"layer": 4, "colormap": "jet", "opacity": 0.5, "counterfactual": False, "box": False, "threshold": 0.15, **settings}
        view["classIdx"] = explanation.top_classes[view.pop("class_rank", 0)]
        drawn = draw(page, view)
        report += assert_same_pixels(drawn, server_view(explanation, view), f"{model} {view}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"viewer-parity-{model}.png"), full_page=True)
    (ARTIFACTS / f"viewer-parity-{model}.txt").write_text("\n".join(report) + "\n")
    assert not page.errors, page.errors
    page.close()


def test_the_pages_resampling_equals_torchs_when_it_shrinks_a_map(browser, app_url):  # noqa: F811
    """Tiny originals make the page shrink a map (torch's antialiased bilinear): the same weights."""
    import torch

    from core.record import resize_maps

    page = open_page(browser, app_url)
    grid = np.random.default_rng(3).random((14, 20)).astype(np.float32)
    for size in ((9, 5), (31, 17), (200, 120)):
        drawn = page.evaluate(
            "([values, size]) => Array.from(GradcamViewer.resize(Float32Array.from(values), 20, 14, size[0], size[1]))",
            [grid.ravel().tolist(), list(size)],
        )
        expected = resize_maps(torch.from_numpy(grid)[None], size)[0].numpy()
        np.testing.assert_allclose(np.asarray(drawn, dtype=np.float32).reshape(expected.shape), expected, atol=2e-6)
    page.close()


def test_the_page_decodes_guided_levels_as_the_server_packs_them(browser, app_url):  # noqa: F811
    """Levels at both ends of 12 bits and jumps between neighbours far over a byte: every escape."""
    from core.payload import pack_levels

    page = open_page(browser, app_url)
    rng = np.random.default_rng(5)
    levels = np.clip(rng.normal(2048, 900, (23, 37, 3)), 0, 4095).astype(np.uint16)
    levels[0, 0], levels[-1, -1], levels[5, :, 1] = 4095, 0, 0
    decoded = page.evaluate(
        "async ([encoded, w, h]) => Array.from(await GradcamViewer.unpackLevels(encoded, w, h, 3))", [pack_levels(levels), 37, 23]
    )
    np.testing.assert_array_equal(np.asarray(decoded, dtype=np.uint16).reshape(levels.shape), levels)
    page.close()
