"""Command line: explain images and write the panels and a captioned strip as PNG files.

    python -m core IMAGE [IMAGE|FOLDER ...] [--model resnet50] [--weights imagenet|random|PATH]
                   [--layer 1-4|all] [--class N ... | --top-k K] [--colormap jet] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

from core.engine import explain
from core.forward import STAGES
from core.intake import BadImageError
from core.render import COLORMAPS, DEFAULT_COLORMAP, strip
from core.views import layer_overlays, panels
from core.weights import MODELS, ModelLoadError, load_model, model_info

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
PANEL_FILES = ("original", "heatmap", "overlay", "guided_backprop", "guided_gradcam")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Grad-CAM, guided backprop and Guided Grad-CAM for ImageNet ResNets.")
    parser.add_argument("images", nargs="+", type=Path, help="image files or folders of images")
    parser.add_argument("--model", default="resnet50", choices=MODELS)
    parser.add_argument("--weights", default="imagenet", help="imagenet, random, or a state_dict file (default: imagenet)")
    parser.add_argument("--labels", type=Path, help="class names, one per line, for a checkpoint's own classes")
    parser.add_argument("--layer", default="4", choices=["1", "2", "3", "4", "all"])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--class", dest="classes", type=int, nargs="+", metavar="N", help="explain these class indices")
    which.add_argument("--top-k", type=int, default=1, metavar="K", help="explain the K best predictions (default: 1)")
    parser.add_argument("--colormap", default=DEFAULT_COLORMAP, choices=list(COLORMAPS))
    parser.add_argument("--opacity", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: ./out)")
    return parser


def _image_files(sources: Sequence[Path]) -> Iterator[Path]:
    for source in sources:
        if source.is_dir():
            yield from sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield source


def _save(picture, path: Path) -> None:
    (picture if isinstance(picture, Image.Image) else Image.fromarray(picture)).save(path)


def _explain_one(model, path: Path, args: argparse.Namespace, untrained: str) -> None:
    explanation = explain(model, path, top_k=max(args.top_k, 5), lazy=True)
    print(f"{path}{untrained}")
    for prediction in explanation.predictions:
        print(f"  {prediction.index:5d}  {prediction.probability:7.2%}  {prediction.label}")
    classes = args.classes or explanation.top_classes[: args.top_k]
    layers = STAGES if args.layer == "all" else (STAGES[int(args.layer) - 1],)
    folder = args.out / path.stem
    folder.mkdir(parents=True, exist_ok=True)
    for c in classes:
        label = explanation.info.categories[c]
        for layer in layers:
            view = panels(explanation, c, layer, colormap=args.colormap, opacity=args.opacity)
            stem = f"class{c}_{layer}"
            for name, picture in zip(PANEL_FILES, view.as_list()):
                if name != "original":
                    _save(picture, folder / f"{stem}_{name}.png")
            _save(view.strip(f" · {label} · {layer}"), folder / f"{stem}_strip.png")
        if args.layer == "all":
            overlays = layer_overlays(explanation, c, colormap=args.colormap, opacity=args.opacity)
            _save(strip([("Original", explanation.image), *overlays]), folder / f"class{c}_layers.png")
    print(f"  wrote {folder}/")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        model = load_model(args.model, weights=args.weights, labels=args.labels)
    except ModelLoadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = model_info(model)
    untrained = "" if info.trained else "  [UNTRAINED weights: predictions are meaningless]"
    print(f"{args.model}, {info.weights}")
    failures = 0
    for path in _image_files(args.images):
        try:
            _explain_one(model, path, args, untrained)
        except (BadImageError, ValueError) as err:
            failures += 1
            print(f"{path}: {err}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
