"""Section 1: the full panel, ours against pytorch-grad-cam, captum and torchcam.

The full panel is everything one upload can show without another network pass: the top-k
predictions, Grad-CAM at layer1..layer4 for each class and guided backprop for each. The
libraries are used as their docs show (a CAM object per layer, one call per class) on copies of
the same random-init model and the explorer's own model input; every map is checked against
ours, and each library's copy for hooks or swapped ReLUs left behind.
"""

from __future__ import annotations

import copy
import warnings

from common import check_at_least, paired_ratio, photo
from harness import Run, random_model

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

import core
from core.forward import STAGES, family_of, stage_paths, to_grid

NUMBER, TITLE = 1, "Full panel"

# Targets (resnet50, 2 threads).
TARGET_VS_PGC = 8.0
TARGET_VS_CAPTUM = 4.0
TARGET_FAST_VS_PGC = 10.0  # ours in bfloat16 (the page's default where native)
TARGET_FAST_VS_CAPTUM = 5.0
TARGET_FAMILY_VS_PGC = 5.0  # every other family, float32 (section 7)


def measure(run: Run) -> None:
    k = run.top_k
    print(f"\n== 1. Full panel: top-{k} + Grad-CAM at layer1..4 for each ({4 * k} maps) + guided backprop for each ({k})")
    if run.smoke:
        full_panel(run, "resnet18", (64, 64), run.reps, is_target=False)
        return
    full_panel(run, "resnet18", (224, 224), run.reps, is_target=False)
    full_panel(run, "resnet50", (224, 224), run.reps, is_target=run.judge)
    if core.native_bfloat16():
        full_panel(run, "resnet50", (224, 224), run.reps, is_target=run.judge, precision="bfloat16")
    else:
        print("  (no native bfloat16 here: the fast-precision row is skipped)")
    full_panel(run, "resnet50", (640, 427), max(3, run.reps // 2), is_target=False)


def stage_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules behind layer1..layer4, as the explorer chooses them, for the libraries to hook."""
    return [model.get_submodule(path) for path in stage_paths(model)]


def reshape_transform(model: torch.nn.Module):
    """pytorch-grad-cam's reshape_transform for the family's layout (None for NCHW CNNs)."""
    layout = family_of(model).layout
    return None if layout == "nchw" else (lambda t: to_grid(t, layout))



def count_hooks(model: torch.nn.Module) -> int:
    hooks = 0
    for module in model.modules():
        hooks += len(module._forward_hooks) + len(module._forward_pre_hooks)
        hooks += len(module._backward_hooks) + len(getattr(module, "_backward_pre_hooks", {}))
    return hooks


def foreign_relus(model: torch.nn.Module) -> int:
    """Modules left in place of torchvision's ReLUs (pytorch-grad-cam's guided model swaps them)."""
    return sum(1 for name, m in model.named_modules() if name.endswith("relu") and not isinstance(m, torch.nn.ReLU))


def ours_full_panel(model: torch.nn.Module, image: Image.Image, top_k: int, precision: str = "float32") -> dict:
    explanation = core.explain(model, image, top_k=top_k, precision=precision)
    classes = explanation.top_classes
    maps = {(c, layer): explanation.cam(c, layer) for c in classes for layer in (1, 2, 3, 4)}
    guided = {c: explanation.guided_backprop(c) for c in classes}
    return {"classes": classes, "maps": maps, "guided": guided, "input": explanation.input_tensor}


def top_classes(model: torch.nn.Module, x: torch.Tensor, top_k: int) -> list[int]:
    with torch.no_grad():
        logits = model(x)
    return logits[0].topk(top_k).indices.tolist()


def pgc_full_panel(model: torch.nn.Module, x: torch.Tensor, top_k: int) -> dict:
    from pytorch_grad_cam import GradCAM, GuidedBackpropReLUModel
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    classes = top_classes(model, x, top_k)
    maps = {}
    for layer, module in enumerate(stage_modules(model), start=1):
        with GradCAM(model=model, target_layers=[module], reshape_transform=reshape_transform(model)) as cam:
            for c in classes:
                maps[(c, layer)] = cam(input_tensor=x, targets=[ClassifierOutputTarget(c)])[0]
    gb_model = GuidedBackpropReLUModel(model=model, device="cpu")
    # It sets requires_grad on its argument and reads .grad, so each class gets its own leaf
    # (otherwise the input gradients of successive classes would add up).
    guided = {c: gb_model(x.detach().clone(), target_category=c) for c in classes}
    model.zero_grad(set_to_none=True)  # loss.backward() filled every parameter's .grad
    return {"classes": classes, "maps": maps, "guided": guided}


def captum_full_panel(model: torch.nn.Module, x: torch.Tensor, top_k: int) -> dict:
    from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam

    classes = top_classes(model, x, top_k)
    size = tuple(x.shape[-2:])
    maps = {}
    for layer, module in enumerate(stage_modules(model), start=1):
        gradcam = LayerGradCam(model, module)
        for c in classes:
            attribution = gradcam.attribute(x, target=c, relu_attributions=True)
            maps[(c, layer)] = LayerAttribution.interpolate(attribution, size, interpolate_mode="bilinear")[0, 0].detach().numpy()
    gbp = GuidedBackprop(model)
    guided = {c: gbp.attribute(x, target=c)[0].permute(1, 2, 0).detach().numpy() for c in classes}
    return {"classes": classes, "maps": maps, "guided": guided}


def torchcam_full_panel(model: torch.nn.Module, x: torch.Tensor, top_k: int) -> dict:
    from torchcam.methods import GradCAM

    size = tuple(x.shape[-2:])
    classes: list[int] | None = None
    maps = {}
    for layer, name in enumerate(STAGES, start=1):
        with GradCAM(model, target_layer=name) as extractor:
            scores = model(x)
            if classes is None:  # the first forward pass gives the top-5 as well
                classes = scores[0].topk(top_k).indices.tolist()
            for i, c in enumerate(classes):
                (cam,) = extractor(class_idx=c, scores=scores, retain_graph=i < len(classes) - 1)
                maps[(c, layer)] = F.interpolate(cam[None], size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
        del scores
    return {"classes": classes, "maps": maps, "guided": None}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def agreement(ours: dict, other: dict, same_size: bool) -> str:
    k = len(ours["classes"])
    if ours["classes"] != other["classes"]:
        return f"top-{k} differs: {ours['classes']} vs {other['classes']}"
    if not same_size:
        return f"top-{k} identical"
    cam_r = min(_corr(ours["maps"][k], other["maps"][k]) for k in ours["maps"])
    text = f"top-{k} identical, min Pearson r over {len(ours['maps'])} maps {cam_r:.4f}"
    if other["guided"] is not None:
        gb_r = min(_corr(ours["guided"][c], other["guided"][c]) for c in ours["guided"])
        text += f", over 5 guided maps {gb_r:.4f}"
    return text


def full_panel(
    run: Run,
    model_name: str,
    size: tuple[int, int],
    reps: int,
    is_target: bool,
    precision: str = "float32",
    section: str = "1 Full panel",
) -> None:
    """Ours against each library on one model: times, agreement, leftovers, ratios and targets."""
    report, top_k = run.report, run.top_k
    base = random_model(model_name)
    image = photo(*size)
    # The explorer's own model input (letterboxed for ViT and MaxViT), which the libraries get too.
    x = core.explain(base, image, top_k=1, lazy=True).input_tensor
    label = f"{model_name} {size[0]}x{size[1]} -> input {x.shape[-1]}x{x.shape[-2]}" + ("" if precision == "float32" else f", ours in {precision}")
    print(f"\n-- {label}")
    libraries = ["pytorch-grad-cam"]
    if family_of(base).layout == "nchw":
        libraries.append("captum")  # LayerGradCam has no reshape for token or NHWC outputs
    if isinstance(base, torchvision.models.ResNet):
        libraries.append("torchcam")
    models = {name: copy.deepcopy(base) for name in ("ours", *libraries)}
    all_impls = {
        "ours": lambda: ours_full_panel(models["ours"], image, top_k, precision),
        # Every library call gets its own copy of the same tensor (captum sets requires_grad in
        # place, pytorch-grad-cam's guided model reads .grad).
        "pytorch-grad-cam": lambda: pgc_full_panel(models["pytorch-grad-cam"], x.clone(), top_k),
        "captum": lambda: captum_full_panel(models["captum"], x.clone(), top_k),
        "torchcam": lambda: torchcam_full_panel(models["torchcam"], x.clone(), top_k),
    }
    impls = {name: all_impls[name] for name in models}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum's "setting backward hooks on ReLU", requires_grad notes
        stats, last = run.interleaved(impls, reps)
    assert torch.equal(last["ours"]["input"], x), "ours and the libraries must see the same input tensor"
    ours = stats["ours"]
    k, maps = top_k, 4 * top_k
    what = {
        "ours": f"explain(top_k={k}) + {maps} cam() + {k} guided_backprop()",
        "pytorch-grad-cam": f"4 GradCAM x {k} calls + GuidedBackpropReLUModel x {k}",
        "captum": f"4 LayerGradCam x {k} + interpolate, GuidedBackprop x {k}",
        "torchcam": f"4 GradCAM (1 fwd + {k} bwd each), {maps} maps only: no guided backprop",
    }
    for name, stat in stats.items():
        leftover = "" if name == "ours" else f"  hooks left {count_hooks(models[name])}, swapped ReLUs {foreign_relus(models[name])}"
        print(f"  {name:17s} {stat.s()}   {what[name]}{leftover}")
    same_size = image.size == (x.shape[-1], x.shape[-2])
    for name in libraries:
        ratio = stats[name].median / ours.median
        note = f" ({maps} Grad-CAM maps only: torchcam has no guided backprop; ours still does all {maps + k})" if name == "torchcam" else ""
        print(f"  ratio {name} / ours: {ratio:.1f}x (median of per-rep ratios {paired_ratio(stats[name], ours):.1f}x){note}")
        print(f"      agreement: {agreement(last['ours'], last[name], same_size)}")
    if not same_size:
        print(f"  note: ours returns maps at the image's {image.size[0]}x{image.size[1]}; the libraries at the model input's size")
    report.row(section, f"{label}: ours", f"{ours.median:.2f} s (IQR {ours.iqr:.2f})")
    fast = precision != "float32"
    limits = {
        "pytorch-grad-cam": TARGET_FAST_VS_PGC if fast else TARGET_VS_PGC if section.startswith("1") else TARGET_FAMILY_VS_PGC,
        "captum": (TARGET_FAST_VS_CAPTUM if fast else TARGET_VS_CAPTUM) if section.startswith("1") else None,
        "torchcam": None,
    }
    for name in libraries:
        limit = limits[name]
        ratio = stats[name].median / ours.median
        suffix = f" ({maps} maps only)" if name == "torchcam" else ""
        target = result = ""
        if is_target and limit is not None:
            passed, margin = check_at_least(ratio, limit)
            target = f">= {limit:.0f}x"
            result = report.verdict(f"full panel vs {name} ({model_name})", passed, margin)
            print(f"  target {name}: {result}")
        report.row(section, f"{label}: {name}{suffix}", f"{stats[name].median:.2f} s (IQR {stats[name].iqr:.2f}) = {ratio:.1f}x ours", target, result)
