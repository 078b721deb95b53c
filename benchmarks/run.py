#!/usr/bin/env python
"""Speed and memory benchmark of the Grad-CAM explorer against pytorch-grad-cam, captum and torchcam.

    python benchmarks/run.py              # full run (several minutes on 2 cores)
    python benchmarks/run.py --markdown   # ... and the README table at the end
    python benchmarks/run.py --smoke      # one repetition, resnet18, tiny image: checks that it runs
    python benchmarks/run.py --profile    # ... and where the time of a first view and a switch goes

One process, torch.set_num_threads(2), random-init torchvision ResNets in eval mode (the app runs
offline here, so it serves untrained weights too: speed does not depend on the weights).

Timing method: within each repetition every implementation runs once, in an order rotated from
one repetition to the next, so drift of a shared, noisy machine hits all of them alike. One
untimed warm-up repetition comes first. Medians and IQRs are over the timed repetitions; ratios
are median(anchor) / median(ours), with the median of the per-repetition ratios beside them.

Sections
  1. Full panel: top-5 predictions, Grad-CAM at layer1..layer4 for each of the 5 classes (20 maps)
     and guided backprop for each of the 5 classes, ours vs. each library used as its docs show.
  2. First view: decoded 512 px image -> explain(lazy=True) -> the four rendered panels.
  3. Cached switch: on a complete()d explanation, the panels for another layer or class.
  4. End to end: the app served in this process, called through gradio_client's /explain.
  5. Memory: peak RSS of a fresh process that builds the app and explains with resnet18 and resnet50,
     in all and above a fresh process that only imported torch, torchvision and gradio.
  6. CAM methods: benchmarks/methods.py's one-map-per-method comparison, in this same run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Before anything imports gradio or torchvision: common sets the offline switches.
from common import (  # noqa: E402
    ROOT,
    Stat,
    check_at_least,
    check_at_most,
    cpu_name,
    fresh_photo,
    launch_app,
    loadavg,
    peak_rss,
    photo,
)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402

THREADS = 2
torch.set_num_threads(THREADS)

import core  # noqa: E402
from core.forward import STAGES, family_of, stage_paths, to_grid  # noqa: E402
from core.views import panels  # noqa: E402
from core.weights import model_info  # noqa: E402

TOP_K = 5  # 2 in --smoke, which only checks that everything runs

# Targets (resnet50, 2 threads).
TARGET_VS_PGC = 8.0
TARGET_VS_CAPTUM = 4.0
TARGET_FAST_VS_PGC = 10.0  # ours in bfloat16 (the page's default where native)
TARGET_FAST_VS_CAPTUM = 5.0
TARGET_FAMILY_VS_PGC = 5.0  # every other family, float32
#: One model of each family in the dropdown, besides the ResNets of section 1.
FAMILY_MODELS = ("vgg16_bn", "densenet121", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s", "regnet_y_800mf", "convnext_tiny", "swin_t", "vit_b_16", "maxvit_t")
#: The three largest models of the dropdown by parameter count, for the memory bound.
LARGEST_MODELS = ("vgg16_bn", "vit_b_16", "wide_resnet50_2")
TARGET_RSS_LARGEST_GB = 2.5
TARGET_FIRST_VIEW_MS = 150.0
TARGET_SWITCH_MS = 30.0
TARGET_E2E_FIRST_MS = 400.0
TARGET_E2E_SWITCH_MS = 150.0
#: Peak RSS above a process that only imported torch, torchvision and gradio (the CUDA wheel of
#: torch alone costs ~700 MB of RSS on import, before any model exists).
TARGET_RSS_ABOVE_IMPORTS_MB = 900.0

#: Whether PASS/MISS is judged (only at the targets' thread count, and not in --smoke).
CHECK_TARGETS = True

#: Untimed repetitions before the timed ones (0 in --smoke, which only checks that everything runs).
WARMUP = 1


# ----------------------------------------------------------------------------- statistics


def interleaved(impls: dict[str, Callable[[], Any]], reps: int, warmup: int | None = None, setup: Callable[[], None] | None = None) -> tuple[dict[str, Stat], dict[str, Any]]:
    """Times every implementation once per repetition, rotating the order between repetitions."""
    warmup = WARMUP if warmup is None else warmup
    names = list(impls)
    times: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, Any] = {}
    for rep in range(-warmup, reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            if setup is not None:
                setup()
            gc.collect()
            started = time.perf_counter()
            result = impls[name]()
            elapsed = time.perf_counter() - started
            last[name] = result
            if rep >= 0:
                times[name].append(elapsed)
            del result
    return {name: Stat(t) for name, t in times.items()}, last


def paired_ratio(anchor: Stat, ours: Stat) -> float:
    return statistics.median(a / o for a, o in zip(anchor.times, ours.times))


# ----------------------------------------------------------------------------- inputs


def random_model(name: str) -> torch.nn.Module:
    """The app's own untrained model (seeded; ViT's zero head made non-degenerate): speed does
    not depend on the weights, and maps that are not all zero make the agreement checks mean something."""
    return core.load_model(name, weights="random", device="cpu")


def stage_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules behind layer1..layer4, as the explorer chooses them, for the libraries to hook."""
    return [model.get_submodule(path) for path in stage_paths(model)]


def reshape_transform(model: torch.nn.Module):
    """pytorch-grad-cam's reshape_transform for the family's layout (None for NCHW CNNs)."""
    layout = family_of(model).layout
    return None if layout == "nchw" else (lambda t: to_grid(t, layout))


# ----------------------------------------------------------------------------- section 1


def count_hooks(model: torch.nn.Module) -> int:
    hooks = 0
    for module in model.modules():
        hooks += len(module._forward_hooks) + len(module._forward_pre_hooks)
        hooks += len(module._backward_hooks) + len(getattr(module, "_backward_pre_hooks", {}))
    return hooks


def foreign_relus(model: torch.nn.Module) -> int:
    """Modules left in place of torchvision's ReLUs (pytorch-grad-cam's guided model swaps them)."""
    return sum(1 for name, m in model.named_modules() if name.endswith("relu") and not isinstance(m, torch.nn.ReLU))


def ours_full_panel(model: torch.nn.Module, image: Image.Image, precision: str = "float32") -> dict:
    explanation = core.explain(model, image, top_k=TOP_K, precision=precision)
    classes = explanation.top_classes
    maps = {(c, layer): explanation.cam(c, layer) for c in classes for layer in (1, 2, 3, 4)}
    guided = {c: explanation.guided_backprop(c) for c in classes}
    return {"classes": classes, "maps": maps, "guided": guided, "input": explanation.input_tensor}


def top_classes(model: torch.nn.Module, x: torch.Tensor) -> list[int]:
    with torch.no_grad():
        logits = model(x)
    return logits[0].topk(TOP_K).indices.tolist()


def pgc_full_panel(model: torch.nn.Module, x: torch.Tensor) -> dict:
    from pytorch_grad_cam import GradCAM, GuidedBackpropReLUModel
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    classes = top_classes(model, x)
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


def captum_full_panel(model: torch.nn.Module, x: torch.Tensor) -> dict:
    from captum.attr import GuidedBackprop, LayerAttribution, LayerGradCam

    classes = top_classes(model, x)
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


def torchcam_full_panel(model: torch.nn.Module, x: torch.Tensor) -> dict:
    from torchcam.methods import GradCAM

    size = tuple(x.shape[-2:])
    classes: list[int] | None = None
    maps = {}
    for layer, name in enumerate(STAGES, start=1):
        with GradCAM(model, target_layer=name) as extractor:
            scores = model(x)
            if classes is None:  # the first forward pass gives the top-5 as well
                classes = scores[0].topk(TOP_K).indices.tolist()
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
    if ours["classes"] != other["classes"]:
        return f"top-{TOP_K} differs: {ours['classes']} vs {other['classes']}"
    if not same_size:
        return f"top-{TOP_K} identical"
    cam_r = min(_corr(ours["maps"][k], other["maps"][k]) for k in ours["maps"])
    text = f"top-{TOP_K} identical, min Pearson r over {len(ours['maps'])} maps {cam_r:.4f}"
    if other["guided"] is not None:
        gb_r = min(_corr(ours["guided"][c], other["guided"][c]) for c in ours["guided"])
        text += f", over 5 guided maps {gb_r:.4f}"
    return text


@dataclass
class Report:
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # section, what, figure, target, result
    verdicts: list[tuple[str, bool, str]] = field(default_factory=list)

    def row(self, section: str, what: str, figure: str, target: str = "", result: str = "") -> None:
        self.rows.append((section, what, figure, target, result))

    def verdict(self, name: str, passed: bool, margin: str) -> str:
        self.verdicts.append((name, passed, margin))
        return f"{'PASS' if passed else 'MISS'} ({margin})"


def full_panel(
    report: Report,
    model_name: str,
    size: tuple[int, int],
    reps: int,
    is_target: bool,
    precision: str = "float32",
    section: str = "1 Full panel",
) -> None:
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
        "ours": lambda: ours_full_panel(models["ours"], image, precision),
        # Every library call gets its own copy of the same tensor (captum sets requires_grad in
        # place, pytorch-grad-cam's guided model reads .grad).
        "pytorch-grad-cam": lambda: pgc_full_panel(models["pytorch-grad-cam"], x.clone()),
        "captum": lambda: captum_full_panel(models["captum"], x.clone()),
        "torchcam": lambda: torchcam_full_panel(models["torchcam"], x.clone()),
    }
    impls = {name: all_impls[name] for name in models}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum's "setting backward hooks on ReLU", requires_grad notes
        stats, last = interleaved(impls, reps)
    assert torch.equal(last["ours"]["input"], x), "ours and the libraries must see the same input tensor"
    ours = stats["ours"]
    k, maps = TOP_K, 4 * TOP_K
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


# ----------------------------------------------------------------------------- sections 2 and 3


def first_view(model: torch.nn.Module, image: Image.Image, precision: str = "float32"):
    explanation = core.explain(model, image, top_k=TOP_K, lazy=True, precision=precision)
    return panels(explanation, explanation.top_classes[0], 4)


def section_first_view(report: Report, model_names: list[str], image: Image.Image, reps: int) -> None:
    print(f"\n== 2. First view: decoded {image.size[0]}x{image.size[1]} PIL image -> explain(lazy=True) -> panels(top class, layer 4)")
    precisions = ["float32", "bfloat16"] if core.native_bfloat16() else ["float32"]  # bfloat16: the page's, where native
    models = {name: random_model(name) for name in model_names}
    impls = {f"{name} {p}": (lambda m=m, p=p: first_view(m, image, p)) for name, m in models.items() for p in precisions}
    stats, _ = interleaved(impls, reps)
    for name, stat in stats.items():
        target = result = ""
        if name.startswith("resnet50") and CHECK_TARGETS:
            passed, margin = check_at_most(stat.median * 1e3, TARGET_FIRST_VIEW_MS, "ms")
            target, result = f"<= {TARGET_FIRST_VIEW_MS:.0f} ms", report.verdict(f"first view ({name})", passed, margin)
        print(f"  {name:18s} {stat.ms()}  {result}")
        report.row("2 First view", name, stat.ms_short(), target, result)


def section_switch(report: Report, model_names: list[str], image: Image.Image, reps: int) -> None:
    print(f"\n== 3. Cached switch: complete()d explanation of a {image.size[0]}x{image.size[1]} image -> panels(...) for another layer / class")
    impls = {}
    for name in model_names:
        explanation = core.explain(random_model(name), image, top_k=TOP_K, lazy=True).complete()
        classes = explanation.top_classes
        counter = {"layer": 0, "class": 0}

        def layer_change(e=explanation, counter=counter):
            counter["layer"] += 1
            return panels(e, e.top_classes[0], 1 + counter["layer"] % 3)  # layer1..3

        def class_change(e=explanation, counter=counter, classes=classes):
            counter["class"] += 1
            return panels(e, classes[1 + counter["class"] % (len(classes) - 1)], 4)

        impls[f"{name} layer change"] = layer_change
        impls[f"{name} class change"] = class_change
    stats, _ = interleaved(impls, reps)
    for name, stat in stats.items():
        target = result = ""
        if name.startswith("resnet50") and CHECK_TARGETS:
            passed, margin = check_at_most(stat.median * 1e3, TARGET_SWITCH_MS, "ms")
            target, result = f"<= {TARGET_SWITCH_MS:.0f} ms", report.verdict(f"cached switch ({name})", passed, margin)
        print(f"  {name:22s} {stat.ms()}  {result}")
        report.row("3 Cached switch", name, stat.ms_short(1), target, result)


# ----------------------------------------------------------------------------- section 4


def client_floor(reps: int, long_side: int, workdir: str) -> Stat:
    """/explain's transport with no work: a bare Blocks endpoint of the same shape answering with
    five ready-made PNG panels, called the same way (the image uploaded, the panels downloaded)."""
    import gradio as gr
    from gradio_client import Client, handle_file

    from common import launch_options_for
    from demo.files import png_file

    picture = np.asarray(fresh_photo(7, long_side))
    ready = [[png_file(np.roll(picture, 5 * rep + n, axis=1), f"floor-{n}") for n in range(5)] for rep in range(reps + 1)]
    with gr.Blocks() as bare:
        inputs = [gr.Image(type="filepath"), gr.Textbox(), gr.Number(), gr.Number(), gr.Number()]
        outputs = [gr.Image(format="png") for _ in range(5)] + [gr.Label(), gr.Markdown()]
        gr.Button().click(lambda *_: [*ready.pop(), {"floor": 1.0}, "floor"], inputs, outputs, api_name="explain")
    client = Client(launch_options_for(bare), verbose=False, download_files=os.path.join(workdir, "floor"))
    path = os.path.join(workdir, "floor.jpg")
    fresh_photo(8, long_side).save(path, quality=90)
    times = []
    try:
        for rep in range(reps + 1):
            started = time.perf_counter()
            client.predict(handle_file(path), "m", 4, None, 5, api_name="/explain")
            if rep:
                times.append(time.perf_counter() - started)
    finally:
        client.close()
        bare.close()
    return Stat(times)


def section_end_to_end(report: Report, model_name: str, reps: int, long_side: int, is_target: bool) -> None:
    print(f"\n== 4. End to end: app in this process, gradio_client -> /explain on localhost ({model_name}, new {long_side} px JPEG per rep)")
    from gradio_client import Client, handle_file

    started = time.perf_counter()
    demo = launch_app()
    client = None
    workdir = tempfile.mkdtemp(prefix="gradcam-bench-")
    try:
        client = Client(demo.local_url, verbose=False, download_files=os.path.join(workdir, "downloads"))
        print(f"  app built and launched, client connected in {time.perf_counter() - started:.1f} s")
        categories = model_info(demo.explorer.shelf.get(model_name)).categories

        def call(path: str, layer: int, class_idx: int | None):
            return client.predict(handle_file(path), model_name, layer, class_idx, TOP_K, api_name="/explain")

        def class_index(result, rank: int) -> int | None:
            confidences = result[5].get("confidences") or []
            label = confidences[rank]["label"]
            return categories.index(label) if categories.count(label) == 1 else None

        names = ("first view", "switch (layer 3)", "switch (class, layer 2)", "switch (layer 1)")
        times: dict[str, list[float]] = {n: [] for n in names}
        for rep in range(-WARMUP, reps):
            path = os.path.join(workdir, f"upload-{rep + 1}.jpg")
            fresh_photo(1000 + rep, long_side).save(path, quality=90)
            sequence = []
            gc.collect()
            t0 = time.perf_counter()
            first = call(path, 4, None)
            sequence.append(time.perf_counter() - t0)
            # /explain completes the top-k in the background; a student looks at the first view
            # for longer than that takes, so the switches below are cache hits.
            assert demo.explorer.completer.join(300), "the background completion did not finish"
            t0 = time.perf_counter()
            call(path, 3, None)
            sequence.append(time.perf_counter() - t0)
            second = class_index(first, 1)
            t0 = time.perf_counter()
            call(path, 2, second)
            sequence.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            call(path, 1, second)
            sequence.append(time.perf_counter() - t0)
            if rep >= 0:
                for n, t in zip(names, sequence):
                    times[n].append(t)
        stats = {n: Stat(t) for n, t in times.items()}
        cached = Stat(times["switch (layer 3)"] + times["switch (class, layer 2)"] + times["switch (layer 1)"])
        for n, stat in stats.items():
            print(f"  {n:26s} {stat.ms()}")
        target = verdict = ""
        if is_target:
            passed, margin = check_at_most(stats["first view"].median * 1e3, TARGET_E2E_FIRST_MS, "ms")
            target, verdict = f"<= {TARGET_E2E_FIRST_MS:.0f} ms", report.verdict(f"end-to-end first view ({model_name})", passed, margin)
            print(f"  target first view: {verdict}")
        report.row("4 End to end", f"{model_name} first view (new image)", stats["first view"].ms_short(), target, verdict)
        if is_target:
            passed, margin = check_at_most(cached.median * 1e3, TARGET_E2E_SWITCH_MS, "ms")
            target, verdict = f"<= {TARGET_E2E_SWITCH_MS:.0f} ms", report.verdict(f"end-to-end switch, cache hit ({model_name})", passed, margin)
        print(f"  cached switch (class + layer changes pooled) {cached.ms()}  {verdict}")
        report.row("4 End to end", f"{model_name} switch after the background completion (cache hit)", cached.ms_short(), target, verdict)
        floor = client_floor(reps, long_side, workdir)
        print(f"  transport floor: the same call to a bare endpoint answering with five ready PNGs {floor.ms()}")
        report.row("4 End to end", "transport floor: bare endpoint, same call, five ready PNG panels", floor.ms_short())
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        demo.close()


# ----------------------------------------------------------------------------- section 5


def memory_child() -> None:
    """Runs in a fresh process: app + resnet18 + resnet50 + one explanation each; prints JSON."""
    import psutil

    process = psutil.Process()
    marks = {"start": process.memory_info().rss}
    demo = launch_app()
    marks["app built + launched (resnet50 loaded)"] = process.memory_info().rss
    shelf = demo.explorer.shelf
    models = {name: shelf.get(name) for name in ("resnet18", "resnet50")}
    marks["resnet18 + resnet50 loaded"] = process.memory_info().rss
    image = photo(640, 427)
    kept = []
    for name, model in models.items():
        explanation = core.explain(model, image, top_k=TOP_K, lazy=True)
        panels(explanation, explanation.top_classes[0], 4)
        explanation.complete()
        panels(explanation, explanation.top_classes[1], 1)
        kept.append(explanation)
    marks["after one completed explanation each (640x427)"] = process.memory_info().rss
    demo.close()
    print(json.dumps({"peak_rss": peak_rss(), "marks": marks}))


def largest_memory_child() -> None:
    """Runs in a fresh process: the three largest models loaded and one completed explanation each."""
    image = photo(640, 427)
    kept = []
    for name in LARGEST_MODELS:
        explanation = core.explain(core.load_model(name, weights="random", device="cpu"), image, top_k=TOP_K)
        panels(explanation, explanation.top_classes[1], 1)
        kept.append(explanation)
    print(json.dumps({"peak_rss": peak_rss(), "models": [len(core.weights.cached_models())]}))


def section_largest_memory(report: Report) -> None:
    print(f"\n== 5b. Memory: fresh process loads {', '.join(LARGEST_MODELS)} and explains a 640x427 image with each (top-{TOP_K}, all stages)")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--largest-memory-child", "--threads", str(torch.get_num_threads())],
        capture_output=True, text=True, timeout=1200, cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak_gb = json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss"] / 1e9
    passed, margin = check_at_most(peak_gb * 1000, TARGET_RSS_LARGEST_GB * 1000, "MB")
    verdict = report.verdict("peak RSS, the three largest models loaded and explained", passed, margin)
    print(f"  peak RSS (VmHWM) {peak_gb:.2f} GB  {verdict}")
    report.row("5 Memory", f"peak RSS in all: {' + '.join(LARGEST_MODELS)}, one complete explanation each", f"{peak_gb:.2f} GB", f"<= {TARGET_RSS_LARGEST_GB} GB", verdict)


BARE_IMPORTS = """
import os
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
import torch, torchvision, gradio
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) * 1024)
"""


def section_memory(report: Report) -> None:
    print("\n== 5. Memory: fresh process builds the app, loads resnet18 + resnet50, explains a 640x427 image with each")
    bare = subprocess.run([sys.executable, "-c", BARE_IMPORTS], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    if bare.returncode != 0:
        raise RuntimeError(f"bare-import child failed ({bare.returncode}):\n{bare.stderr[-3000:]}")
    baseline = int(bare.stdout.split()[-1])
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory-child", "--threads", str(torch.get_num_threads())],
        capture_output=True, text=True, timeout=600, cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  RSS {'after only: import torch, torchvision, gradio':48s} {baseline / 2**20:7.0f} MiB  (a separate fresh process: the baseline)")
    for mark, rss in data["marks"].items():
        print(f"  RSS {mark:48s} {rss / 2**20:7.0f} MiB")
    peak, above_mb = data["peak_rss"], (data["peak_rss"] - baseline) / 1e6
    passed, margin = check_at_most(above_mb, TARGET_RSS_ABOVE_IMPORTS_MB, "MB")
    verdict = report.verdict("peak RSS above the bare imports, resnet18 + resnet50", passed, margin)
    print(f"  peak RSS (VmHWM) {peak / 1e9:.2f} GB in all; {above_mb:.0f} MB above the bare imports ({baseline / 1e6:.0f} MB)  {verdict}")
    report.row("5 Memory", "peak RSS above import torch+torchvision+gradio: app + resnet18 + resnet50 + 1 explanation each",
               f"{above_mb:.0f} MB", f"<= {TARGET_RSS_ABOVE_IMPORTS_MB:.0f} MB", verdict)
    report.row("5 Memory", "peak RSS in all (the bare imports alone: " + f"{baseline / 1e6:.0f} MB)", f"{peak / 1e9:.2f} GB")


# ----------------------------------------------------------------------------- section 6


def section_methods(report: Report, model_name: str, reps: int, smoke: bool) -> None:
    """benchmarks/methods.py's measurement, in this run: one map per CAM method vs pytorch-grad-cam."""
    print(f"\n== 6. CAM methods: one {model_name} layer4 map on a completed Explanation vs pytorch-grad-cam's own call")
    import methods

    # pytorch-grad-cam's Score-CAM and Ablation-CAM perturb every channel: minutes, skipped in --smoke.
    rows = methods.measure(model_name, reps, 0 if smoke else 1, 4, warmup=not smoke)
    for method, ours, theirs in rows:
        mine = Stat(ours)
        if not theirs:
            print(f"  {method:12s} ours {mine.ms()}   pytorch-grad-cam not run in --smoke")
            report.row("6 CAM methods", f"{model_name} 224x224 layer4 {method}: ours / pytorch-grad-cam", f"{mine.median * 1e3:.1f} ms / not run")
            continue
        other = Stat(theirs)
        ratio = other.median / mine.median
        print(f"  {method:12s} ours {mine.ms()}   pytorch-grad-cam {other.median * 1e3:9.1f} ms (n={len(theirs)})   ratio {ratio:.0f}x")
        report.row("6 CAM methods", f"{model_name} 224x224 layer4 {method}: ours / pytorch-grad-cam",
                   f"{mine.median * 1e3:.1f} ms / {other.median * 1e3:.0f} ms = {ratio:.0f}x")


# ----------------------------------------------------------------------------- profile


def profile(image: Image.Image) -> None:
    """Where a resnet50 first view and a cached switch spend their time (torch.profiler + cProfile)."""
    import cProfile
    import pstats

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    print("\n== Profile (resnet50)")
    model = random_model("resnet50")
    first_view(model, image)  # warm: twin built
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        first_view(model, image)
    print("-- first view, torch ops by self CPU time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    explanation = core.explain(model, image, top_k=TOP_K, lazy=True).complete()
    for title, fn in (
        ("first view", lambda: first_view(model, image)),
        ("cached layer switch", lambda: panels(explanation, explanation.top_classes[0], 2)),
        ("cached class switch", lambda: panels(explanation, explanation.top_classes[1], 4)),
    ):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(3):
            fn()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
        print(f"-- {title}, cProfile x3 by own time")
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


# ----------------------------------------------------------------------------- main


def machine() -> str:
    cpu = cpu_name()
    import captum
    import torchcam

    try:
        from importlib.metadata import version
        pgc = version("grad-cam")
    except Exception:  # noqa: BLE001
        pgc = "?"
    try:
        import gradio
        gradio_version = gradio.__version__
    except Exception:  # noqa: BLE001
        gradio_version = "?"
    return (
        f"CPU: {cpu}, {os.cpu_count()} logical cores; load average {loadavg()}\n"
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"torchvision {torchvision.__version__}, gradio {gradio_version}, captum {captum.__version__}, "
        f"grad-cam {pgc}, torchcam {torchcam.__version__}"
    )


def markdown(report: Report, header: str) -> str:
    lines = [header, "", "| Section | Measurement | Median (IQR) | Target | Result |", "|---|---|---|---|---|"]
    for section, what, figure, target, result in report.rows:
        lines.append(f"| {section} | {what} | {figure} | {target} | {result} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per section (default 7)")
    parser.add_argument("--smoke", action="store_true", help="1 repetition, resnet18, 64x64 image: checks that it runs")
    parser.add_argument("--markdown", action="store_true", help="print the README table at the end")
    parser.add_argument("--threads", type=int, default=None, help=f"torch threads (default {THREADS}, the targets' setting; 1 in --smoke)")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7", help="comma-separated sections to run (default all)")
    parser.add_argument("--profile", action="store_true", help="also profile a resnet50 first view and cached switch")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--largest-memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is None:
        # One thread in --smoke: on a shared 2-core machine two OpenMP threads can stall for
        # scheduler ticks in every parallel region, and the smoke run must stay short.
        args.threads = 1 if args.smoke else THREADS
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child()
        return 0
    if args.largest_memory_child:
        largest_memory_child()
        return 0
    sections = {int(part) for part in args.sections.split(",") if part.strip()}

    global WARMUP, TOP_K, CHECK_TARGETS
    started = time.perf_counter()
    WARMUP = 0 if args.smoke else 1
    TOP_K = 2 if args.smoke else 5
    reps = 1 if args.smoke else max(1, args.reps)
    models = ["resnet18"] if args.smoke else ["resnet18", "resnet50"]
    report = Report()
    mode = "smoke: 1 rep, no warm-up, top-2, resnet18, 1 thread; figures not meaningful" if args.smoke else f"{reps} reps + 1 warm-up"
    info = machine()
    print("Grad-CAM explorer benchmark (" + mode + ")")
    print(info)

    target_threads = args.threads == THREADS
    CHECK_TARGETS = target_threads and not args.smoke
    print(f"\n== 1. Full panel: top-{TOP_K} + Grad-CAM at layer1..4 for each ({4 * TOP_K} maps) + guided backprop for each ({TOP_K})")
    if 1 not in sections:
        print("  skipped (--sections)")
    elif args.smoke:
        full_panel(report, "resnet18", (64, 64), reps, is_target=False)
    else:
        full_panel(report, "resnet18", (224, 224), reps, is_target=False)
        full_panel(report, "resnet50", (224, 224), reps, is_target=target_threads)
        if core.native_bfloat16():
            full_panel(report, "resnet50", (224, 224), reps, is_target=target_threads, precision="bfloat16")
        else:
            print("  (no native bfloat16 here: the fast-precision row is skipped)")
        full_panel(report, "resnet50", (640, 427), max(3, reps // 2), is_target=False)

    view_image = photo(64, 64) if args.smoke else photo(512, 350)
    if 2 in sections:
        section_first_view(report, models, view_image, reps)
    else:
        print("\n== 2. First view: skipped (--sections)")
    if 3 in sections:
        section_switch(report, models, view_image, reps)
    else:
        print("\n== 3. Cached switch: skipped (--sections)")

    if 4 not in sections:
        print("\n== 4. End to end: skipped (--sections)")
    elif args.smoke:
        section_end_to_end(report, "resnet18", 1, 64, is_target=False)
    else:
        section_end_to_end(report, "resnet50", reps, 512, is_target=target_threads)
    if args.smoke:
        print("\n== 5. Memory: skipped in --smoke (it starts a second process and loads resnet50)")
    elif 5 in sections:
        section_memory(report)
        section_largest_memory(report)
    else:
        print("\n== 5. Memory: skipped (--sections)")

    if 6 in sections:
        section_methods(report, "resnet18" if args.smoke else "resnet50", reps, args.smoke)
    else:
        print("\n== 6. CAM methods: skipped (--sections)")

    if 7 not in sections:
        print("\n== 7. Families: skipped (--sections)")
    else:
        print(f"\n== 7. Every family: full panel at 224x224, float32, vs pytorch-grad-cam (and captum for CNNs)")
        for name in ["mobilenet_v3_large"] if args.smoke else FAMILY_MODELS:
            full_panel(report, name, (64, 64) if args.smoke else (224, 224), reps if args.smoke else max(2, reps // 2),
                       is_target=CHECK_TARGETS, section="7 Families")

    if args.profile:
        profile(view_image)

    print(f"\n== Targets (resnet50, {THREADS} threads)" + ("" if target_threads else f": not checked at --threads {args.threads}"))
    for name, passed, margin in report.verdicts:
        print(f"  {'PASS' if passed else 'MISS'}  {name}: {margin}")
    if not report.verdicts:
        print("  (none checked in --smoke)")
    print(f"\nload average at end {loadavg()}; total {time.perf_counter() - started:.0f} s")
    if args.markdown:
        print()
        print(markdown(report, f"Machine: {info.replace(chr(10), '; ')}. {mode}; medians."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
