"""The model parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018): does the map depend on the model?

Re-initialise the network's weights cumulatively from the top (the head, then the last stage,
then the one before, …, down to the stem), explain the same image and class after each step,
and measure how similar each map still is to the trained network's map. A map that barely
changes while the weights it claims to explain are replaced by noise is not explaining the model.
The paper found guided backprop fails (it stays an edge detector) and Grad-CAM passes.

The shared model is never touched: everything happens on a private ``copy.deepcopy``. The random
weights come from a seeded reference network built the way torchvision builds that family (so
each layer gets its family's own initialisation), or, for a model torchvision cannot rebuild by
name, from the ResNet rules (see :func:`_reinitialise`).

How maps are compared (the paper's choices, from its code):

* Grad-CAM: the [0, 1] map that ``Explanation.cam`` returns, at the original image size.
* Guided backprop and Guided Grad-CAM: an (H, W, 3) gradient, reduced per pixel to a signed
  value (the sum over colour channels: the paper's "diverging" map) and to a magnitude (the sum
  of absolute values over channels: its "absolute value" map).
* Spearman rank correlation of the signed maps and of the magnitudes; SSIM of the magnitudes,
  each scaled to [0, 1] by mapping its minimum to 0 and its 99th percentile to 1 (clipped), as
  the paper's visualisation does, so a few extreme gradients cannot decide the score. Those
  scaled magnitudes are also what the grid shows.

SSIM is scikit-image's ``structural_similarity`` with its defaults (7×7 uniform window, sample
covariance, K1 = 0.01, K2 = 0.03, data_range 1) re-implemented in numpy so that the app needs no
scikit-image; the tests check it against scikit-image, and the rank correlation against scipy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn

from core.compare import class_probability
from core.engine import Explanation, explain, stage_index
from core.forward import STAGES, stage_paths
from core.intake import read_image
from core.render import grid, heatmap
from core.weights import model_info

SANITY_METHODS = ("gradcam", "guided_backprop", "guided_gradcam")
METHOD_TITLES = {"gradcam": "Grad-CAM", "guided_backprop": "Guided backprop", "guided_gradcam": "Guided Grad-CAM"}
#: Where each magnitude map's 1.0 lies: robust to the few extreme pixels of a gradient.
CLIP_PERCENTILE = 99.0

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Similarity:
    """How alike a map is to the unrandomised one: 1 is identical; nan where a map is constant."""

    spearman: float  # rank correlation of the signed maps
    spearman_abs: float  # rank correlation of the magnitudes
    ssim: float  # structural similarity of the magnitudes scaled to [0, 1]


@dataclass(frozen=True)
class SanityStep:
    """One cumulative randomisation step; step 0 is the original network."""

    name: str  # "original", "head", "layer4", …, "layer1", "stem"
    randomised: tuple[str, ...]  # module paths re-initialised so far (cumulative)
    maps: dict[str, np.ndarray]  # method → (H, W) float32 magnitude in [0, 1], as compared by SSIM
    similarity: dict[str, Similarity]  # method → similarity to step 0's map
    probability: float  # the explained class's probability under this network


@dataclass(frozen=True)
class SanityResult:
    model: str
    class_idx: int
    label: str
    layer: str
    methods: tuple[str, ...]
    seed: int
    steps: tuple[SanityStep, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One row per (step, method): the figures, as the CSV file and the plot take them."""
        return [
            {
                "step": n,
                "randomised": step.name,
                "method": method,
                "spearman": step.similarity[method].spearman,
                "spearman_abs": step.similarity[method].spearman_abs,
                "ssim": step.similarity[method].ssim,
                "probability": step.probability,
            }
            for n, step in enumerate(self.steps)
            for method in self.methods
        ]

    def step(self, name: str) -> SanityStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r}; steps are {', '.join(s.name for s in self.steps)}")


# ----- similarity -----------------------------------------------------------------------------


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (scipy.stats.rankdata's default)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks; nan if either is constant."""
    ra, rb = rank(a), rank(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def _box_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Mean over every size×size window that fits inside the image ('valid' positions)."""
    table = np.pad(image.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    return sums / (size * size)


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0, win_size: int = 7) -> float:
    """Mean structural similarity, equal to skimage.metrics.structural_similarity's defaults.

    scikit-image filters the whole image and then crops (win_size − 1) / 2 pixels from each
    border before averaging, so only windows that lie fully inside the image count: exactly the
    'valid' windows computed here.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or min(a.shape) < win_size:
        raise ValueError(f"ssim needs two 2-D maps of one shape, at least {win_size} px a side; got {a.shape} and {b.shape}")
    n = win_size * win_size
    covariance_norm = n / (n - 1)  # sample covariance, as scikit-image's default
    ux, uy = _box_mean(a, win_size), _box_mean(b, win_size)
    vx = covariance_norm * (_box_mean(a * a, win_size) - ux * ux)
    vy = covariance_norm * (_box_mean(b * b, win_size) - uy * uy)
    vxy = covariance_norm * (_box_mean(a * b, win_size) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(index.mean())


def scale01(magnitude: np.ndarray, percentile: float = CLIP_PERCENTILE) -> np.ndarray:
    """Minimum → 0, the given percentile → 1, clipped; a map with nothing above its minimum → zeros."""
    low = float(magnitude.min())
    high = float(np.percentile(magnitude, percentile))
    if high <= low:  # mostly constant (e.g. a ReLU'd map that is 99% zero): use the peak instead
        high = float(magnitude.max())
    if high <= low:
        return np.zeros(magnitude.shape, dtype=np.float32)
    return np.clip((magnitude - low) / (high - low), 0.0, 1.0).astype(np.float32)


def method_maps(explanation: Explanation, method: str, class_idx: int, layer: int | str) -> tuple[np.ndarray, np.ndarray]:
    """(signed, magnitude) per-pixel maps of one method at the original image size."""
    if method == "gradcam":
        cam01 = explanation.cam(class_idx, layer)
        return cam01, cam01
    if method == "guided_backprop":
        gradient = explanation.guided_backprop(class_idx)
    elif method == "guided_gradcam":
        gradient = explanation.guided_gradcam(class_idx, layer)
    else:
        raise ValueError(f"the sanity check compares {', '.join(SANITY_METHODS)}, not {method!r}")
    return gradient.sum(axis=-1), np.abs(gradient).sum(axis=-1)


def similarity(reference: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]) -> Similarity:
    """Compares two (signed, magnitude) maps the paper's three ways."""
    return Similarity(
        spearman=spearman(reference[0], other[0]),
        spearman_abs=spearman(reference[1], other[1]),
        ssim=ssim(scale01(reference[1]), scale01(other[1])),
    )


# ----- the randomisation steps ----------------------------------------------------------------


def _has_own_tensors(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))


def randomisation_steps(model: nn.Module, stages: Sequence[str] | None = None) -> list[tuple[str, list[str]]]:
    """[(step name, module paths)], top first: the head, layer4, …, layer1, the stem.

    Every module that holds parameters or buffers of its own belongs to exactly one step, by its
    place in registration order: after the last stage is the head; from the end of one stage to
    the end of the next is that stage (so a DenseNet transition goes with the block after it);
    before the first stage is the stem. Empty steps are dropped. ``stages`` defaults to the
    model's four slider stages (:func:`core.forward.stage_paths`).
    """
    paths = tuple(stages) if stages is not None else stage_paths(model)
    order = [name for name, _ in model.named_modules()]

    def inside(name: str, stage: str) -> bool:
        return name == stage or name.startswith(stage + ".")

    ends = []
    for stage in paths:
        positions = [i for i, name in enumerate(order) if inside(name, stage)]
        if not positions:
            raise TypeError(f"{type(model).__name__} has no module {stage!r}")
        ends.append(max(positions))
    first_start = min(i for i, name in enumerate(order) if inside(name, paths[0]))
    groups: dict[str, list[str]] = {name: [] for name in ("head", *reversed(STAGES), "stem")}
    for i, (name, module) in enumerate(model.named_modules()):
        if not _has_own_tensors(module):
            continue
        if i > ends[-1]:
            groups["head"].append(name)
        elif i < first_start and not any(inside(name, stage) for stage in paths):
            groups["stem"].append(name)
        else:
            stage = next(n for n, end in enumerate(ends) if i <= end)
            groups[STAGES[stage]].append(name)
    return [(step, names) for step, names in groups.items() if names]


def _rebuilt_by_name(model: nn.Module) -> nn.Module | None:
    """The same architecture freshly built by torchvision (its own per-family initialisation),
    or None when the model is not a torchvision model that its name rebuilds exactly."""
    info = model_info(model)
    try:
        fresh = torchvision.models.get_model(info.name, weights=None, num_classes=len(info.categories))
    except (ValueError, KeyError, TypeError):
        return None
    ours = {k: v.shape for k, v in model.state_dict().items()}
    theirs = {k: v.shape for k, v in fresh.state_dict().items()}
    return fresh if ours == theirs else None


def _reinitialise(module: nn.Module) -> None:
    """torchvision's ResNet initialisation, for a model that torchvision cannot rebuild by name:
    convolutions kaiming-normal (fan_out, ReLU gain) with zero bias; norms weight 1, bias 0 and
    fresh running statistics; everything else its own ``reset_parameters`` (nn.Linear's default is
    what ResNet's fc gets); a bare parameter (e.g. a class token) N(0, 0.02²)."""
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif hasattr(module, "reset_parameters"):
        module.reset_parameters()
    else:
        for parameter in module.parameters(recurse=False):
            nn.init.normal_(parameter, std=0.02)


def _random_twin(model: nn.Module, seed: int) -> nn.Module:
    """A seeded, freshly initialised network with the model's structure, on the model's device."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        fresh = _rebuilt_by_name(model)
        if fresh is None:
            fresh = copy.deepcopy(model)
            for module in fresh.modules():
                if _has_own_tensors(module):
                    _reinitialise(module)
        for module in fresh.modules():
            # torchvision starts a ViT's head at zero (to be fine-tuned); a zero head makes every
            # gradient and so every map zero, and every similarity undefined.
            if isinstance(module, nn.Linear) and not module.weight.any():
                module.reset_parameters()
    device = next(model.parameters()).device
    return fresh.to(device).eval()


def _copy_own_tensors(source: nn.Module, target: nn.Module) -> None:
    with torch.no_grad():
        for name, tensor in [*target.named_parameters(recurse=False), *target.named_buffers(recurse=False)]:
            tensor.copy_(getattr(source, name))


def randomised_copies(model: nn.Module, seed: int = 0) -> Iterator[tuple[str, tuple[str, ...], nn.Module]]:
    """Cascading randomisation of a private copy: yields (step name, module paths re-initialised
    so far, the copy) for the head, layer4, …, the stem. It is one copy, randomised further at
    each step, so use it before asking for the next. ``model`` itself is only read."""
    steps = randomisation_steps(model)  # from the shared model: its stages are already known
    private = copy.deepcopy(model).eval()
    fresh = _random_twin(private, seed)
    randomised: list[str] = []
    for name, paths in steps:
        for path in paths:
            _copy_own_tensors(fresh.get_submodule(path), private.get_submodule(path))
        randomised.extend(paths)
        yield name, tuple(randomised), private


# ----- the test -------------------------------------------------------------------------------


def sanity_check(
    model: nn.Module,
    image: Any,
    class_idx: int | None = None,
    layer: int | str = 4,
    methods: Sequence[str] = SANITY_METHODS,
    seed: int = 0,
    progress: Progress | None = None,
) -> SanityResult:
    """Cascading randomisation of a private copy of ``model``, explaining ``image`` at each step.

    ``class_idx=None`` explains the unrandomised model's top class, and every step explains that
    same class. ``progress(fraction, description)`` is told before each network pass. The shared
    model is only read: it keeps its tensors bitwise, gets no hook and no ``.grad``.
    """
    methods = tuple(methods)
    for method in methods:
        if method not in SANITY_METHODS:
            raise ValueError(f"the sanity check compares {', '.join(SANITY_METHODS)}, not {method!r}")
    stage = STAGES[stage_index(layer)]
    picture = read_image(image)
    total = len(randomisation_steps(model)) + 1

    def report(done: int, what: str) -> None:
        if progress is not None:
            progress(done / total, what)

    report(0, "Explaining the original network…")
    original = explain(model, picture, top_k=1, lazy=True)
    c = original.top_classes[0] if class_idx is None else int(class_idx)
    reference = {m: method_maps(original, m, c, stage) for m in methods}
    identical = Similarity(1.0, 1.0, 1.0)
    steps = [SanityStep("original", (), {m: scale01(reference[m][1]) for m in methods}, dict.fromkeys(methods, identical), class_probability(original, c))]

    report(0, "Building randomised weights…")
    for n, (name, randomised, private) in enumerate(randomised_copies(model, seed), start=1):
        report(n, f"Randomised down to {name}: explaining again…")
        explanation = explain(private, picture, top_k=1, lazy=True)
        maps = {m: method_maps(explanation, m, c, stage) for m in methods}
        steps.append(
            SanityStep(
                name,
                randomised,
                {m: scale01(maps[m][1]) for m in methods},
                {m: similarity(reference[m], maps[m]) for m in methods},
                class_probability(explanation, c),
            )
        )
    report(total, "Done")
    return SanityResult(
        model=original.info.name,
        class_idx=c,
        label=original.info.categories[c],
        layer=stage,
        methods=methods,
        seed=seed,
        steps=tuple(steps),
    )


# ----- the figure -----------------------------------------------------------------------------


def sanity_grid(result: SanityResult, *, colormap: str = "viridis", tile: int = 160) -> Image.Image:
    """Rows: methods; columns: the original, then each cumulative step; under each map its rank
    correlation (of the magnitudes) and SSIM with the original."""
    columns = ["original", *(f"+ {step.name}" for step in result.steps[1:])]
    cells, captions = [], []
    for method in result.methods:
        cells.append([heatmap(step.maps[method], colormap) for step in result.steps])
        captions.append(["reference" if n == 0 else _figures(step.similarity[method]) for n, step in enumerate(result.steps)])
    return grid(cells, row_titles=[METHOD_TITLES[m] for m in result.methods], column_titles=columns, captions=captions, tile=tile)


def _figures(similarity: Similarity) -> str:
    # Pillow's bundled font has no Greek letters or dashes: plain words render everywhere.
    rank = "n/a" if np.isnan(similarity.spearman_abs) else f"{similarity.spearman_abs:.2f}"
    return f"rank {rank} · SSIM {similarity.ssim:.2f}"
