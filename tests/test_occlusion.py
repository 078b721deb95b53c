"""Hide and see: the fills, the masks, the shared colour scale, and on the model trained on
synthetic scenes, hiding the object (or the map's hottest pixels) lowers the class the most."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from core.engine import explain
from core.intake import to_model_input
from core.occlusion import FILLS, HideAndSee, boxes_mask, hide, hide_and_see, hottest_mask
from core.weights import IMAGENET_MEAN, IMAGENET_STD
from tests.models import assert_untouched, model_state, tiny_resnet
from tests.synthetic import SHAPE, SIZE, trained_on_scenes


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    # Not seed 0: that is the noise fill's default seed, and would hide the picture behind itself.
    return np.random.default_rng(5).integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def untrained():
    return tiny_resnet(num_classes=3, seed=1).eval()


# ----- masks ----------------------------------------------------------------------------------


def test_boxes_become_one_mask_cut_at_the_edges():
    mask = boxes_mask((40, 30), [(5, 5, 15, 10), (10, 8, 20.4, 12), (35, 25, 60, 90)])
    assert mask.shape == (30, 40) and mask.dtype == bool
    assert mask.sum() == 10 * 5 + 10 * 4 - 5 * 2 + 5 * 5  # overlapping boxes count once
    assert mask[25:, 35:].all() and not mask[:5].any()
    assert not boxes_mask((40, 30), []).any()


@pytest.mark.parametrize("box, message", [((5, 5, 5, 10), "right > left"), ((5, 9, 8, 2), "right > left"), ((1, 2, 3), "four numbers")])
def test_a_bad_box_is_refused_with_a_reason(box, message):
    with pytest.raises(ValueError, match=message):
        boxes_mask((40, 30), [box])


def test_the_hottest_mask_takes_exactly_that_share_of_the_hottest_pixels():
    cam = np.random.default_rng(1).random((30, 40), dtype=np.float32)
    for fraction in (0.1, 0.2, 0.5, 1):
        mask = hottest_mask(cam, fraction)
        assert mask.sum() == round(fraction * cam.size)
        if fraction < 1:
            assert cam[mask].min() >= cam[~mask].max()
    flat = hottest_mask(np.zeros((30, 40), dtype=np.float32), 0.2)  # ties: a fixed scatter, not a raster band
    assert flat.sum() == 240 and flat[:6].sum() < 240
    for fraction in (0, -0.2, 1.5, True):
        with pytest.raises(ValueError, match="share of pixels"):
            hottest_mask(cam, fraction)


# ----- fills ----------------------------------------------------------------------------------


def test_the_mean_fill_is_zero_input_to_the_network(picture):
    mask = boxes_mask((SIZE, SIZE), [(30, 40, 120, 100)])
    x = to_model_input(Image.fromarray(hide(picture, mask, "mean", mean=IMAGENET_MEAN)), IMAGENET_MEAN, IMAGENET_STD)[0]
    rounding = 0.5 / 255 / min(IMAGENET_STD)
    assert x[:, torch.from_numpy(mask)].abs().max() <= rounding + 1e-6
    assert x[:, torch.from_numpy(~mask)].abs().max() > 1  # the rest is the picture


def test_blur_changes_only_the_hidden_pixels(picture):
    mask = boxes_mask((SIZE, SIZE), [(30, 40, 120, 100)])
    blurred = hide(picture, mask, "blur")
    assert np.array_equal(blurred[~mask], picture[~mask])
    assert (blurred[mask] != picture[mask]).mean() > 0.9
    assert blurred[mask].std() < picture[mask].std() / 4  # shapes (here: pixel noise) dissolve


def test_noise_is_seeded_and_the_same_at_a_pixel_whatever_the_mask(picture):
    a = boxes_mask((SIZE, SIZE), [(30, 40, 120, 100)])
    b = boxes_mask((SIZE, SIZE), [(60, 60, 200, 200)])
    first = hide(picture, a, "noise", seed=3)
    assert np.array_equal(first, hide(picture, a, "noise", seed=3))
    assert not np.array_equal(first[a], hide(picture, a, "noise", seed=4)[a])
    assert np.array_equal(first[a & b], hide(picture, b, "noise", seed=3)[a & b])
    assert np.array_equal(first[~a], picture[~a])


def test_bad_fills_and_masks_are_refused_with_a_reason(picture):
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    with pytest.raises(ValueError, match="unknown fill 'grey'; choose from blur, mean, noise"):
        hide(picture, mask, "grey")
    with pytest.raises(ValueError, match="boolean"):
        hide(picture, mask.astype(np.uint8), "mean")
    with pytest.raises(ValueError, match=r"the mask is \(100, 224\).*draw it at the image's size"):
        hide(picture, np.zeros((224, 100), dtype=bool), "mean")


# ----- the comparison -------------------------------------------------------------------------


def upsampled(cam_raw: np.ndarray) -> np.ndarray:
    """An independent bilinear upsampling (torch's, half-pixel centres) to the 224×224 picture."""
    return F.interpolate(torch.from_numpy(cam_raw)[None, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0, 0].numpy()


def test_before_and_after_share_the_before_maps_scale(picture, untrained):
    before = model_state(untrained)
    mask = boxes_mask((SIZE, SIZE), [(0, 0, 112, 224)])
    result = hide_and_see(untrained, picture, mask, "mean", class_idx=2, layer=3)
    assert isinstance(result, HideAndSee) and (result.class_idx, result.layer, result.fill, result.hidden) == (2, "layer3", "mean", 0.5)
    raw_before = upsampled(explain(untrained, picture).cam(2, 3, raw=True))
    raw_after = upsampled(explain(untrained, result.edited).cam(2, 3, raw=True))
    peak = raw_before.max()
    assert result.cam_before == pytest.approx(np.clip(raw_before / peak, 0, 1), abs=1e-4)
    assert result.cam_after == pytest.approx(np.clip(raw_after / peak, 0, 1), abs=1e-4)
    assert result.after_peak == pytest.approx(raw_after.max() / peak, rel=1e-4)
    assert result.after_peak != pytest.approx(1, abs=0.01)  # so each map on its own scale would differ
    assert result.cam_after.max() == pytest.approx(min(1.0, result.after_peak), abs=1e-6)
    assert_untouched(untrained, before)


def test_hiding_nothing_changes_nothing_and_an_explanation_saves_a_pass(picture, untrained):
    explanation = explain(untrained, picture, lazy=True)
    result = hide_and_see(untrained, explanation, np.zeros((SIZE, SIZE), dtype=bool))
    assert result.class_idx == explanation.top_classes[0] and result.layer == "layer4" and result.hidden == 0
    assert result.drop == 0 and result.probability_before == pytest.approx(explanation.predictions[0].probability)
    assert np.array_equal(result.cam_before, result.cam_after) and result.after_peak == 1
    assert result.top_after == tuple(explanation.predictions[:5]) and len(result.top_after) == 3
    with pytest.raises(ValueError, match="ran in float32, not bfloat16"):
        hide_and_see(untrained, explanation, np.zeros((SIZE, SIZE), dtype=bool), precision="bfloat16")
    with pytest.raises(ValueError, match="unknown fill"):
        hide_and_see(untrained, explanation, np.zeros((SIZE, SIZE), dtype=bool), "grey")
    with pytest.raises(ValueError, match="class must be an integer from 0 to 2"):
        hide_and_see(untrained, explanation, np.zeros((SIZE, SIZE), dtype=bool), class_idx=3)


# ----- on the model trained on synthetic scenes -----------------------------------------------


@pytest.fixture(scope="module")
def trained():
    return trained_on_scenes()


def background_box(rng: np.random.Generator, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """A box of the object's size that does not touch the object, at a random place."""
    while True:
        left, top = (int(v) for v in rng.integers(0, SIZE - SHAPE, size=2))
        if left + SHAPE <= box[0] or left >= box[2] or top + SHAPE <= box[1] or top >= box[3]:
            return left, top, left + SHAPE, top + SHAPE


def paired_drops(trained, masks) -> tuple[np.ndarray, np.ndarray]:
    """p_c's drop under the mean fill in every held-out scene, for each of the two masks that
    ``masks(explanation, box, label)`` gives."""
    model, held_out = trained
    drops = []
    for image, box, label in held_out:
        explanation = explain(model, image, top_k=2, lazy=True)
        drops.append([hide_and_see(model, explanation, mask, "mean", label).drop for mask in masks(explanation, box, label)])
    first, second = np.array(drops).T
    return first, second


def test_hiding_the_object_lowers_the_class_more_than_hiding_as_much_background(trained, capsys):
    rng = np.random.default_rng(0)
    on, off = paired_drops(
        trained, lambda explanation, box, _: [boxes_mask(explanation.size, [hidden]) for hidden in (box, background_box(rng, box))]
    )
    rate = float((on > off).mean())
    with capsys.disabled():
        print(f"\nhiding the object (mean fill): p_c drops by {on.mean():.3f} (median {np.median(on):.3f}), as much background by "
              f"{off.mean():.4f}; more for the object in {rate:.0%} of {len(on)} scenes")
    assert rate >= 0.9


def test_hiding_the_hottest_fifth_of_gradcam_lowers_the_class_more_than_a_random_fifth(trained, capsys):
    """The random fifth is the hottest 20% of a random 7×7 map upsampled like layer4's: blobs of
    the same grain as Grad-CAM's, not a scatter of single pixels (which the network averages away)."""
    generator = torch.Generator().manual_seed(0)
    hottest, random = paired_drops(
        trained,
        lambda explanation, _, label: [
            hottest_mask(cam01, 0.2) for cam01 in (explanation.cam(label, 4), upsampled(torch.rand(7, 7, generator=generator).numpy()))
        ],
    )
    rate = float((hottest > random).mean())
    with capsys.disabled():
        print(f"\nhiding 20% (mean fill): Grad-CAM's hottest drops p_c by {hottest.mean():.3f} (median {np.median(hottest):.3f}), "
              f"a random 20% by {random.mean():.3f}; more for Grad-CAM's in {rate:.0%} of {len(hottest)} scenes")
    assert hottest.mean() > random.mean() + 0.2
    assert rate >= 0.9


@pytest.mark.parametrize("fill", FILLS)
def test_every_fill_runs_on_the_trained_model(trained, fill):
    model, held_out = trained
    image, box, label = held_out[0]
    result = hide_and_see(model, image, boxes_mask(image.size, [box]), fill, label, layer=2)
    assert result.edited.shape == (SIZE, SIZE, 3) and result.cam_after.shape == (SIZE, SIZE)
    assert result.drop == pytest.approx(result.probability_before - result.probability_after)
