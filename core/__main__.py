"""Command line: explain images and write the panels and a captioned strip as PNG files.

    python -m core [explain] IMAGE [IMAGE|FOLDER ...] [--model resnet50] [--weights imagenet|random|PATH]
                   [--layer 1-4|all] [--class N ... | --top-k K] [--colormap jet] [--out DIR]
                   [--box-threshold 0.15] [--handout [--handout-format png|pdf]]
    python -m core sanity IMAGE [IMAGE|FOLDER ...] [--model resnet50] [--class N] [--layer 1-4]
                   [--seed 0] [--out DIR]

Explaining also writes the paper's localisation box (core.localise) for every class and layer:
drawn on the overlay (``*_box.png``), and with the threshold it used in ``boxes.json``, one per
image, beside the panels.

``sanity`` runs the model parameter randomisation test (core.sanity) and writes the grid of maps
as one PNG and the similarity figures as CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

from core.engine import explain
from core.forward import STAGES
from core.handout import handout, save_handout
from core.intake import BadImageError
from core.localise import DEFAULT_THRESHOLD, check_threshold, localise
from core.render import COLORMAPS, DEFAULT_COLORMAP, draw_box, strip
from core.sanity import SANITY_METHODS, sanity_check, sanity_grid
from core.views import layer_overlays, panels
from core.weights import MODELS, ModelLoadError, load_model, model_info

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
PANEL_FILES = ("original", "heatmap", "overlay", "guided_backprop", "guided_gradcam")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Grad-CAM, guided backprop and Guided Grad-CAM for torchvision ImageNet classifiers. "
        "'python -m core sanity IMAGE ...' runs the sanity check instead.",
    )
    _model_arguments(parser)
    parser.add_argument("--layer", default="4", choices=["1", "2", "3", "4", "all"])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--class", dest="classes", type=int, nargs="+", metavar="N", help="explain these class indices")
    which.add_argument("--top-k", type=int, default=1, metavar="K", help="explain the K best predictions (default: 1)")
    parser.add_argument("--colormap", default=DEFAULT_COLORMAP, choices=list(COLORMAPS))
    parser.add_argument("--opacity", type=float, default=0.5)
    parser.add_argument(
        "--box-threshold", type=_threshold, default=DEFAULT_THRESHOLD, metavar="T",
        help=f"the localisation box keeps the map above T × its maximum (default: {DEFAULT_THRESHOLD}, the paper's)",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: ./out)")
    parser.add_argument("--handout", action="store_true", help="also write a one-page handout per class and layer")
    parser.add_argument("--handout-format", default="png", choices=["png", "pdf"], help="the handout's file type (default: png)")
    return parser


def _threshold(text: str) -> float:
    try:
        return check_threshold(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, help="image files or folders of images")
    parser.add_argument("--model", default="resnet50", choices=MODELS)
    parser.add_argument("--weights", default="imagenet", help="imagenet, random, or a state_dict file (default: imagenet)")
    parser.add_argument("--labels", type=Path, help="class names, one per line, for a checkpoint's own classes")


def _sanity_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core sanity",
        description="Sanity check (Adebayo et al., 2018): randomise the model from the top down and see whether the maps change.",
    )
    _model_arguments(parser)
    parser.add_argument("--class", dest="class_idx", type=int, metavar="N", help="explain this class (default: the top prediction)")
    parser.add_argument("--layer", type=int, default=4, choices=[1, 2, 3, 4], help="Grad-CAM's stage (default: 4)")
    parser.add_argument("--methods", nargs="+", default=list(SANITY_METHODS), choices=SANITY_METHODS)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    parser.add_argument("--colormap", default="viridis", choices=list(COLORMAPS))
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
    print("  layers: " + " | ".join(f"{stage} = {label}" for stage, label in zip(STAGES, explanation.stage_labels)))
    classes = args.classes or explanation.top_classes[: args.top_k]
    layers = STAGES if args.layer == "all" else (STAGES[int(args.layer) - 1],)
    folder = args.out / path.stem
    folder.mkdir(parents=True, exist_ok=True)
    boxes = []
    for c in classes:
        label = explanation.info.categories[c]
        for layer in layers:
            box = localise(explanation.cam(c, layer), args.box_threshold)
            boxes.append({"class": c, "label": label, "layer": layer, "threshold": args.box_threshold, "box": list(box) if box else None})
            view = panels(explanation, c, layer, colormap=args.colormap, opacity=args.opacity)
            stem = f"class{c}_{layer}"
            for name, picture in zip(PANEL_FILES, view.as_list()):
                if name != "original":
                    _save(picture, folder / f"{stem}_{name}.png")
            _save(draw_box(view.overlay, box), folder / f"{stem}_box.png")
            _save(view.strip(f" · {label} · {layer} = {explanation.stage_labels[STAGES.index(layer)]}"), folder / f"{stem}_strip.png")
            if args.handout:
                page = handout(explanation, c, layer, colormap=args.colormap, opacity=args.opacity)
                save_handout(page, folder / f"{stem}_handout.{args.handout_format}")
        if args.layer == "all":
            overlays = layer_overlays(explanation, c, colormap=args.colormap, opacity=args.opacity)
            _save(strip([("Original", explanation.image), *overlays]), folder / f"class{c}_layers.png")
    summary = {"image": str(path), "size": list(explanation.size), "box_format": "left, top, right, bottom in image pixels; right and bottom exclusive", "boxes": boxes}
    (folder / "boxes.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"  wrote {folder}/")


SANITY_COLUMNS = ("step", "randomised", "method", "spearman", "spearman_abs", "ssim", "probability")


def _sanity_one(model, path: Path, args: argparse.Namespace, untrained: str) -> None:
    def report(fraction: float, what: str) -> None:
        print(f"  {fraction:4.0%} {what}", file=sys.stderr)

    result = sanity_check(model, path, args.class_idx, args.layer, args.methods, seed=args.seed, progress=report)
    print(f"{path}{untrained}: class {result.class_idx} ({result.label}), Grad-CAM at {result.layer}, seed {result.seed}")
    print(f"  {'randomised down to':<20}" + "".join(f"{m:>34}" for m in result.methods))
    print(f"  {'':<20}" + "".join(f"{'rank  rank|abs|  SSIM':>34}" for _ in result.methods))
    for step in result.steps:
        figures = "".join(
            f"{step.similarity[m].spearman:>18.3f}{step.similarity[m].spearman_abs:>8.3f}{step.similarity[m].ssim:>8.3f}" for m in result.methods
        )
        print(f"  {step.name:<20}{figures}")
    args.out.mkdir(parents=True, exist_ok=True)
    sanity_grid(result, colormap=args.colormap).save(args.out / f"{path.stem}_sanity.png")
    with open(args.out / f"{path.stem}_sanity.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=SANITY_COLUMNS)
        writer.writeheader()
        writer.writerows(result.rows())
    print(f"  wrote {args.out / (path.stem + '_sanity.png')} and .csv")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A subcommand in front; without one, the original 'python -m core IMAGE ...' usage.
    sanity = bool(argv) and argv[0] == "sanity"
    if argv and argv[0] == "explain":  # the default command, named
        argv = argv[1:]
    args = _sanity_parser().parse_args(argv[1:]) if sanity else _parser().parse_args(argv)
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
            (_sanity_one if sanity else _explain_one)(model, path, args, untrained)
        except (BadImageError, ValueError) as err:
            failures += 1
            print(f"{path}: {err}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
