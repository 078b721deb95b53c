"""The running app through its documented /explain endpoint, as a gradio_client user sees it."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from tests.test_engine import smooth_image

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "scene.png"
    smooth_image(400, 300, seed=21).save(path)
    return str(path)


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def explain(client, picture, layer=4, class_idx=None, model="resnet18", top_k=5):
    *panels, predictions, status = client.predict(handle_file(picture), model, layer, class_idx, top_k, api_name="/explain")
    return [pixels(p) for p in panels], predictions, status


def test_the_endpoint_is_documented_with_its_parameters(client):
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(info) == ["/explain"], "only the documented endpoint is public"
    names = [p["parameter_name"] for p in info["/explain"]["parameters"]]
    assert len(names) == 5
    assert len(info["/explain"]["returns"]) == 7


def test_top_class_panels_predictions_and_untrained_status(client, picture):
    panels, predictions, status = explain(client, picture)
    assert len(panels) == 5
    for panel in panels:
        assert panel.shape == (300, 400, 3)
        assert panel.std() > 2, "a panel must not be blank"
    original = pixels(picture)
    assert np.abs(panels[0] - original).max() <= 1, "the original comes back losslessly"
    confidences = predictions["confidences"]
    assert len(confidences) == 5
    assert confidences[0]["confidence"] >= confidences[-1]["confidence"]
    assert predictions["label"] == confidences[0]["label"]
    assert "untrained" in status and "resnet18" in status


def test_chosen_classes_and_layers_give_different_maps(client, picture):
    top_panels, predictions, _ = explain(client, picture, layer=3)
    other_panels, _, _ = explain(client, picture, layer=3, class_idx=7)
    shallow_panels, _, _ = explain(client, picture, layer=1)
    assert not np.array_equal(top_panels[1], other_panels[1]), "another class, another heatmap"
    assert not np.array_equal(top_panels[4], other_panels[4]), "…and another Guided Grad-CAM"
    assert not np.array_equal(top_panels[1], shallow_panels[1]), "another layer, another heatmap"
    assert np.array_equal(top_panels[0], other_panels[0])
