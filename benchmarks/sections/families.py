"""Section 7: the full panel of section 1 for one model of every other family in the dropdown."""

from __future__ import annotations

from harness import Run
from sections.full_panel import full_panel

NUMBER, TITLE = 7, "Families"

#: One model of each family in the dropdown, besides the ResNets of section 1.
FAMILY_MODELS = ("vgg16_bn", "densenet121", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s", "regnet_y_800mf", "convnext_tiny", "swin_t", "vit_b_16", "maxvit_t")


def measure(run: Run) -> None:
    print("\n== 7. Every family: full panel at 224x224, float32, vs pytorch-grad-cam (and captum for CNNs)")
    for name in ["mobilenet_v3_large"] if run.smoke else FAMILY_MODELS:
        full_panel(run, name, (64, 64) if run.smoke else (224, 224), run.reps if run.smoke else max(2, run.reps // 2),
                   is_target=run.judge, section="7 Families")
