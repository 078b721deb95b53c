"""The teaching figures of docs/teaching.md: the sanity-check table and grid, and a handout page.

    python docs/figures.py [--seeds 8] [--scenes 6]

All from narrow ResNets that the tests train on synthetic scenes (tests/synthetic.py), so the maps
mean something without ImageNet weights: class 0 is a red disc, class 1 a blue square. The sanity
check uses the deeper one that tests/test_sanity.py uses; the handout the one-block-per-stage one.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import explain  # noqa: E402
from core.handout import handout, save_handout  # noqa: E402
from core.sanity import sanity_check, sanity_grid  # noqa: E402
from core.weights import model_info  # noqa: E402
from tests.synthetic import deeper_trained_on_scenes, trained_on_scenes  # noqa: E402
from tests.test_sanity import STEP_NAMES, mean, sweep  # noqa: E402


def table(results) -> str:
    lines = [
        "| randomised down to | Grad-CAM rank corr. | Grad-CAM SSIM | guided backprop rank corr. (of magnitudes) | guided backprop SSIM | Guided Grad-CAM rank corr. | Guided Grad-CAM SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in STEP_NAMES[1:]:
        gc = (mean(results, step, "gradcam", "spearman"), mean(results, step, "gradcam", "ssim"))
        gb = [mean(results, step, "guided_backprop", m) for m in ("spearman", "spearman_abs", "ssim")]
        ggc = (mean(results, step, "guided_gradcam", "spearman"), mean(results, step, "guided_gradcam", "ssim"))
        lines.append(f"| {step} | {gc[0]:.2f} | {gc[1]:.2f} | {gb[0]:.2f} ({gb[1]:.2f}) | {gb[2]:.2f} | {ggc[0]:.2f} | {ggc[1]:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--scenes", type=int, default=6)
    args = parser.parse_args()
    print(table(sweep(range(args.seeds), args.scenes)))

    deeper, held_out = deeper_trained_on_scenes()
    picture, _, label = held_out[0]
    sanity_grid(sanity_check(deeper, picture, class_idx=label, seed=0), tile=120).save(ROOT / "docs" / "sanity.png", optimize=True)

    model, held_out = trained_on_scenes()

    # The same network, named for the page: its two classes and where its weights came from.
    model.gradcam_info = replace(
        model_info(model), name="tiny ResNet", weights="trained on synthetic scenes", categories=("red disc", "blue square")
    )
    explanation = explain(model, held_out[2][0], top_k=2)
    page = handout(explanation, explanation.top_classes[0], 4, colormap="cividis").page
    save_handout(page.resize((page.width * 3 // 4, page.height * 3 // 4)), ROOT / "docs" / "handout.png")
    del model.gradcam_info  # the trained model is shared by the tests: leave it as it was
    print("wrote docs/sanity.png and docs/handout.png")


if __name__ == "__main__":
    main()
