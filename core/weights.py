"""Model registry, official ImageNet weights, a shared model cache and the pre-download command.

Official weights are torchvision's own checkpoint files, kept where torchvision keeps them
(``$TORCH_HOME/hub/checkpoints``), so a file fetched by any torchvision program is reused here
and vice versa.  Loading never hangs without a network: a short HEAD probe runs before any
download, and ``GRADCAM_OFFLINE=1`` skips the network altogether.

Command line::

    python -m core.weights download resnet18 resnet50   # or: download --all
    python -m core.weights where
"""

from __future__ import annotations

import argparse
import http.client
import os
import pickle
import sys
import threading
import urllib.request
import zlib
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

#: Every model the explorer offers, and the family label the dropdown groups it under.
MODEL_FAMILIES: dict[str, str] = {
    "resnet18": "ResNet",
    "resnet34": "ResNet",
    "resnet50": "ResNet",
    "resnet101": "ResNet",
    "resnet152": "ResNet",
    "wide_resnet50_2": "ResNet",
    "resnext50_32x4d": "ResNet",
    "vgg16_bn": "VGG",
    "densenet121": "DenseNet",
    "mobilenet_v3_large": "MobileNet",
    "efficientnet_b0": "EfficientNet",
    "efficientnet_v2_s": "EfficientNet",
    "regnet_y_800mf": "RegNet",
    "convnext_tiny": "ConvNeXt",
    "swin_t": "Swin Transformer",
    "vit_b_16": "Vision Transformer",
    "maxvit_t": "MaxViT",
}
MODELS: tuple[str, ...] = tuple(MODEL_FAMILIES)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: How many loaded models the cache keeps; vgg16_bn is ~530 MB and vit_b_16 ~350 MB, so keep this small.
CACHE_SIZE = 3

_PROBE_TIMEOUT_S = 3
_OFFLINE_ENV = "GRADCAM_OFFLINE"
_KEYS_SHOWN = 3  # keys listed per kind in a checkpoint-mismatch message


class ModelLoadError(Exception):
    """A model could not be loaded; the message says why and what to do."""


class WeightsUnavailableError(ModelLoadError, RuntimeError):
    """The weights file is not here and cannot be fetched (no network, offline mode, missing file)."""


class BadCheckpointError(ModelLoadError, ValueError):
    """A weights or labels file exists but is unreadable or does not fit the architecture."""


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is: architecture, weights, labels and the input normalisation it expects."""

    name: str
    weights: str
    trained: bool
    categories: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: The short side of the model's input: the official weights' evaluation crop (224 for most).
    input_size: int = 224


# --------------------------------------------------------------------------- registry


def _check_name(name: str) -> str:
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return name


def default_weights(name: str) -> WeightsEnum:
    """torchvision's recommended ImageNet weights for ``name`` (e.g. IMAGENET1K_V2 for resnet50)."""
    return torchvision.models.get_model_weights(_check_name(name)).DEFAULT


def checkpoint_path(name: str) -> Path:
    """Where torchvision keeps (or will keep) the official checkpoint file for ``name``."""
    filename = default_weights(name).url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _imagenet_info(name: str, weights: str, trained: bool) -> ModelInfo:
    meta_source = default_weights(name)
    preprocess = meta_source.transforms()
    return ModelInfo(
        name=name,
        weights=weights,
        trained=trained,
        categories=tuple(meta_source.meta["categories"]),
        mean=tuple(preprocess.mean),
        std=tuple(preprocess.std),
        input_size=int(preprocess.crop_size[0]),
    )


def _numbered_labels(num_classes: int) -> tuple[str, ...]:
    return tuple(f"class {i}" for i in range(num_classes))


def model_info(model: nn.Module) -> ModelInfo:
    """The ModelInfo that load_model attached, or a best guess for a model built elsewhere."""
    info = getattr(model, "gradcam_info", None)
    if isinstance(info, ModelInfo):
        return info
    head = classifier_path(model)
    num_classes = model.get_submodule(head).out_features if head else 0
    categories = (
        tuple(default_weights("resnet50").meta["categories"])
        if num_classes == 1000
        else _numbered_labels(num_classes)
    )
    return ModelInfo(
        name=type(model).__name__,
        weights="unknown",
        trained=True,
        categories=categories,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def classifier_path(model: nn.Module) -> str | None:
    """The module path of the final Linear layer, whose rows are the classes (e.g. "fc", "heads.head")."""
    linears = [path for path, module in model.named_modules() if isinstance(module, nn.Linear)]
    return linears[-1] if linears else None


def num_classes_of(model: nn.Module) -> int:
    head = classifier_path(model)
    if head is None:
        raise TypeError(f"{type(model).__name__} has no Linear classifier")
    return model.get_submodule(head).out_features


def _build(name: str, num_classes: int) -> nn.Module:
    """The bare architecture with torchvision's default (random) initialisation."""
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes)


# --------------------------------------------------------------------------- reading files


def _short(exc: BaseException, limit: int = 200) -> str:
    # torch's unpickling errors run to dozens of lines; the first line carries the point.
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Unwrap the common checkpoint layouts into a plain ``{key: tensor}`` state_dict."""
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not (
        isinstance(obj, dict)
        and obj
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise BadCheckpointError(
            f"{path} is not a model state_dict (expected a dict of tensors, "
            f"or one under a 'state_dict' or 'model' key)"
        )
    # Checkpoints saved from nn.DataParallel / DistributedDataParallel prefix every key.
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text here suggests weights_only=False, which would run untrusted code.
        raise BadCheckpointError(
            f"Cannot read checkpoint {path}: it is corrupt or holds Python objects other than "
            f"tensors, which are refused for safety (torch.load weights_only=True)"
        ) from exc
    except Exception as exc:  # torch.load signals other bad input with many unrelated types
        raise BadCheckpointError(f"Cannot read checkpoint {path}: {_short(exc)}") from exc
    return _as_state_dict(obj, path)


def _read_labels(path: Path, num_classes: int) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadCheckpointError(f"Cannot read labels file {path}: {_short(exc)}") from exc
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != num_classes:
        raise BadCheckpointError(
            f"Labels file {path} has {len(labels)} labels but the model has {num_classes} classes"
        )
    return labels


def _mismatch_summary(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> str:
    """A few lines on how ``state_dict`` differs from ``model``'s, or "" if it fits exactly."""
    expected = model.state_dict()
    problems = {
        "missing": [k for k in expected if k not in state_dict],
        "unexpected": [k for k in state_dict if k not in expected],
        "wrong shape": [
            f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
            for k, v in expected.items()
            if k in state_dict and state_dict[k].shape != v.shape
        ],
    }
    return "; ".join(
        f"{len(keys)} {kind} key(s), e.g. {', '.join(keys[:_KEYS_SHOWN])}"
        for kind, keys in problems.items()
        if keys
    )


def _load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], name: str, path: Path) -> None:
    summary = _mismatch_summary(model, state_dict)
    if summary:
        raise BadCheckpointError(
            f"Checkpoint {path} does not fit {name} (is it for another architecture?): {summary}"
        )
    model.load_state_dict(state_dict, strict=True)


# --------------------------------------------------------------------------- official weights


def _offline() -> bool:
    return os.environ.get(_OFFLINE_ENV) == "1"


def _unavailable(name: str, reason: str) -> WeightsUnavailableError:
    path = checkpoint_path(name)
    return WeightsUnavailableError(
        f"ImageNet weights for {name} are not available ({reason}). "
        f"Put {path.name} (from {default_weights(name).url}) in {path.parent}, "
        f"e.g. by running `python -m core.weights download {name}` where there is internet access."
    )


def _probe(url: str) -> None:
    """Fail fast when the weights server is unreachable; torch.hub's own download has no timeout."""
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_S):
        pass


def _download(name: str) -> dict[str, torch.Tensor]:
    weights = default_weights(name)
    try:
        _probe(weights.url)
    except (OSError, http.client.HTTPException) as exc:
        raise _unavailable(name, f"cannot reach {weights.url}: {_short(exc)}") from exc
    try:
        # Writes to checkpoint_path(name), the same cache torchvision itself uses.
        state_dict = weights.get_state_dict(progress=True, check_hash=True)
    except OSError as exc:
        raise _unavailable(name, f"download failed: {_short(exc)}") from exc
    except RuntimeError as exc:  # torch.hub reports a hash mismatch this way
        raise BadCheckpointError(f"Download of {weights.url} was corrupt: {_short(exc)}") from exc
    return _as_state_dict(state_dict, checkpoint_path(name))


def _official_state_dict(name: str, offline: bool) -> dict[str, torch.Tensor]:
    """The official state_dict from the torch hub cache, downloading it unless ``offline``."""
    path = checkpoint_path(name)
    if path.is_file():
        try:
            return _read_state_dict(path)
        except BadCheckpointError as exc:
            raise BadCheckpointError(
                f"{exc}. Delete {path} and run `python -m core.weights download {name}` again."
            ) from exc
    if offline:
        raise _unavailable(name, f"{path.name} is not cached and {_OFFLINE_ENV}=1")
    return _download(name)


# --------------------------------------------------------------------------- loading


def _load_imagenet(name: str) -> nn.Module:
    model = _build(name, 1000)
    _load_into(model, _official_state_dict(name, _offline()), name, checkpoint_path(name))
    model.gradcam_info = _imagenet_info(name, f"ImageNet ({default_weights(name).name})", True)
    return model


def _load_random(name: str) -> nn.Module:
    # Seeded by name, without touching the caller's RNG: a model evicted from the cache and
    # loaded again is the same network, so cached explanations and new ones never disagree.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(zlib.crc32(name.encode()))
        model = _build(name, 1000)
        _undegenerate(model)
    model.gradcam_info = _imagenet_info(name, "random init (untrained)", False)
    return model


def _undegenerate(model: nn.Module) -> None:
    """Give an untrained model a head that can tell classes apart, so its demo maps are not blank.

    torchvision starts a ViT's head at exactly zero: every logit is 0, every gradient at the
    stages is 0, and every map would be empty. A ConvNeXt's layer scales start at 1e-6, which
    makes the network nearly the identity. Trained weights never look like that.
    """
    with torch.no_grad():
        if isinstance(model, torchvision.models.VisionTransformer):
            nn.init.normal_(model.heads.head.weight, std=0.02)
        for param_name, param in model.named_parameters():
            if param_name.endswith("layer_scale"):
                param.fill_(0.1)


def _load_checkpoint(name: str, path: Path) -> nn.Module:
    state_dict = _read_state_dict(path)
    # The class count is the row count of the classifier, the last 2-D weight in the file (a
    # state_dict lists tensors in registration order, and every torchvision classifier registers
    # its final Linear last). _load_into then checks every key and shape against the architecture.
    matrices = [v for k, v in state_dict.items() if k.endswith("weight") and v.dim() == 2]
    if not matrices:
        raise BadCheckpointError(f"Checkpoint {path} has no 2-D weight, so it is not a {name} classifier")
    num_classes = matrices[-1].shape[0]
    model = _build(name, num_classes)
    _load_into(model, state_dict, name, path)
    info = _imagenet_info(name, f"checkpoint {path.name}", True)
    if num_classes != 1000:
        info = replace(info, categories=_numbered_labels(num_classes))
    model.gradcam_info = info
    return model


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _file_key(path: Path) -> tuple[str, int, int]:
    # mtime and size make a re-saved checkpoint at the same path a new cache entry.
    stat = path.stat()
    return (str(path), stat.st_mtime_ns, stat.st_size)


def _weights_spec(name: str, weights: str | os.PathLike) -> tuple:
    if isinstance(weights, str) and weights == "imagenet":
        # The cache folder is part of the key so a changed TORCH_HOME is not served stale.
        return ("imagenet", str(checkpoint_path(name)))
    if isinstance(weights, str) and weights == "random":
        return ("random",)
    path = Path(weights).expanduser().absolute()
    if not path.is_file():
        raise WeightsUnavailableError(f"No such checkpoint file: {path}")
    return ("file", *_file_key(path))


def _labels_spec(labels: str | os.PathLike | None) -> tuple | None:
    if labels is None:
        return None
    path = Path(labels).expanduser().absolute()
    if not path.is_file():
        raise ModelLoadError(f"No such labels file: {path}")
    return _file_key(path)


def _load_uncached(name: str, spec: tuple, labels: tuple | None, device: torch.device) -> nn.Module:
    if spec[0] == "imagenet":
        model = _load_imagenet(name)
    elif spec[0] == "random":
        model = _load_random(name)
    else:
        model = _load_checkpoint(name, Path(spec[1]))
    if labels is not None:
        categories = _read_labels(Path(labels[0]), num_classes_of(model))
        model.gradcam_info = replace(model.gradcam_info, categories=categories)
    return model.to(device).eval()


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple, nn.Module] = OrderedDict()
_loading: dict[tuple, Future] = {}


def load_model(
    name: str,
    weights: str | os.PathLike = "imagenet",
    labels: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    *,
    cached: bool = True,
) -> nn.Module:
    """A torchvision classifier in eval mode on ``device`` with ``model.gradcam_info`` set, shared via an LRU cache.

    ``weights`` is "imagenet" (official torchvision weights), "random" (untrained) or a path to a
    state_dict file.  ``labels`` is an optional file with one class name per line.  The returned
    model is shared between callers, so do not modify it (remove any hooks you add).
    ``cached=False`` loads a copy of its own, for a caller that keeps models itself and must be the
    only one holding them (the page's shelf frees a model by dropping it).
    """
    _check_name(name)
    resolved_device = _resolve_device(device)
    key = (name, _weights_spec(name, weights), _labels_spec(labels), str(resolved_device))
    if not cached:
        return _load_uncached(name, key[1], key[2], resolved_device)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        pending = _loading.get(key)
        if pending is None:
            pending = _loading[key] = Future()
            owner = True
        else:
            owner = False
    if not owner:
        # Another thread is loading this very key: share its result (or its failure).
        return pending.result()
    try:
        model = _load_uncached(name, key[1], key[2], resolved_device)
    except BaseException as exc:
        with _cache_lock:
            del _loading[key]
        pending.set_exception(exc)
        raise
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        del _loading[key]
    pending.set_result(model)
    return model


def clear_cache() -> None:
    """Forget every cached model (loads in progress still complete and are then cached)."""
    with _cache_lock:
        _cache.clear()


def cached_models() -> list[tuple]:
    """Cache keys ``(name, weights spec, labels spec, device)``, least recently used first."""
    with _cache_lock:
        return list(_cache)


# --------------------------------------------------------------------------- command line


def _cmd_download(names: Sequence[str]) -> int:
    failures = 0
    for name in names:
        try:
            _official_state_dict(name, offline=False)
        except ModelLoadError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failures += 1
        else:
            print(f"{name}: {checkpoint_path(name)}")
    return 1 if failures else 0


def _cmd_where() -> int:
    print(f"cache folder: {checkpoint_path(MODELS[0]).parent}")
    for name in MODELS:
        path = checkpoint_path(name)
        print(f"{name:<18} {path.name:<34} {'present' if path.is_file() else 'missing'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.weights", description="Manage the official ImageNet weights of the explorer's models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="fetch official checkpoints into the torch hub cache")
    # No argparse `choices` here: with nargs="*" it rejects an empty list, which --all needs.
    download.add_argument("models", nargs="*", metavar="MODEL", help=", ".join(MODELS))
    download.add_argument("--all", action="store_true", help="download every model")
    commands.add_parser("where", help="show the cache folder and which checkpoints are present")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m core.weights``; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "where":
        return _cmd_where()
    if args.all:
        return _cmd_download(MODELS)
    if not args.models:
        parser.error("name at least one model, or pass --all")
    unknown = [name for name in args.models if name not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    return _cmd_download(args.models)


if __name__ == "__main__":
    sys.exit(main())
