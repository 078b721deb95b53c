"""A one-page handout of the current view, for a student to take away or a teacher to print.

The page (A4 portrait at 150 dpi) holds the five panels with two lines each on what the panel
means, the model, layer, class and probability, the class at layer1..layer4, and the colour
scale. Drawn with Pillow: the layout is a fixed grid of pictures and wrapped text, which Pillow
places exactly, so matplotlib would add a dependency and nothing else.

Text is kept to characters that Pillow's bundled font (Aileron) has, so the page renders the same
on any machine: it lacks ×, arrows, dashes and Greek letters.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.compare import class_probability
from core.engine import Explanation, stage_index
from core.forward import STAGES
from core.methods import METHOD_INFO
from core.render import DEFAULT_COLORMAP, as_rgb_array, colormap_lut, wrap_text
from core.views import PANEL_TITLES, layer_overlays, panels

PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi
DPI = 150
MARGIN = 64
GAP = 28
INK = (20, 20, 20)
GREY = (90, 90, 90)
#: Colormaps whose lightness rises monotonically, so the heatmap still reads when printed in grey.
PRINTABLE_COLORMAPS = ("cividis", "viridis")

PANEL_MEANINGS = (
    ("Original", "The photo. The model saw it {seen}, whole, not cropped."),
    (
        "{method} heatmap",
        "Where the {layer} features {effect} the score of the class: bright = strong evidence. "
        "Coarse: one value per cell of the {grid} grid, smoothed up to the image.",
    ),
    ("Overlay", "The heatmap laid over the image, to see which object or part the evidence sits on."),
    (
        "Guided backprop",
        "Which pixels, if changed, would raise the score most, passing only positive signals back. "
        "Fine edges, but nearly the same for every class: not class-discriminative.",
    ),
    (
        "Guided Grad-CAM",
        "Guided backprop multiplied by the heatmap: fine detail, kept only where the class evidence is. "
        "Grey = no effect; light and dark = pixels pushing the score up or down.",
    ),
)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font, width: int, fill=INK, spacing: float = 1.3) -> int:
    """Draws wrapped text from its top-left corner; returns the y just below it."""
    x, y = xy
    step = int(font.size * spacing)
    for line in wrap_text(draw, text, font, width):
        draw.text((x, y), line, font=font, fill=fill)
        y += step
    return y


def fit_into(picture: np.ndarray | Image.Image, box: tuple[int, int]) -> Image.Image:
    image = Image.fromarray(as_rgb_array(picture))
    scale = min(box[0] / image.width, box[1] / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _colour_scale(colormap: str, width: int, height: int) -> Image.Image:
    ramp = np.linspace(0, 255, width).astype(np.uint8)
    return Image.fromarray(np.repeat(colormap_lut(colormap)[ramp][None], height, axis=0))


def _module(explanation: Explanation, index: int) -> str:
    """The module behind a slider position, when its name is not the position's own (ResNets)."""
    path = explanation.stages[index]
    return "" if path == STAGES[index] else path


def method_title(method: str) -> str:
    """The method's display name, e.g. "Grad-CAM++"."""
    return METHOD_INFO[method].split(":")[0]


Box = tuple[int, int, int, int]  # left, top, right, bottom


@dataclass
class Handout:
    """The page, and where each picture on it went (for tests and anyone cropping it)."""

    page: Image.Image
    boxes: dict[str, Box] = field(default_factory=dict)

    def place(self, name: str, picture: Image.Image, xy: tuple[int, int]) -> None:
        self.page.paste(picture, xy)
        self.boxes[name] = (xy[0], xy[1], xy[0] + picture.width, xy[1] + picture.height)


def handout(
    explanation: Explanation,
    class_idx: int,
    layer: int | str = 4,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    counterfactual: bool = False,
    method: str = "gradcam",
) -> Handout:
    """The page for one view: RGB, PAGE_SIZE, white; boxes named by PANEL_TITLES and STAGES."""
    index = stage_index(layer)
    stage = STAGES[index]
    view = panels(explanation, class_idx, stage, colormap=colormap, opacity=opacity, counterfactual=counterfactual, method=method)
    depth = layer_overlays(explanation, class_idx, colormap=colormap, opacity=opacity, counterfactual=counterfactual, method=method)
    grids = [f"{a.shape[-2]}x{a.shape[-1]}" for a in explanation.stage_activations]  # no "×" in the font
    info = explanation.info
    label = info.categories[class_idx]

    sheet = Handout(Image.new("RGB", PAGE_SIZE, "white"))
    draw = ImageDraw.Draw(sheet.page)
    width = PAGE_SIZE[0] - 2 * MARGIN
    title, heading, body, small = _font(40), _font(26), _font(19), _font(17)

    against = "against" if counterfactual else "for"
    y = _text(draw, (MARGIN, MARGIN), f"What does {info.name} look at {against} \u201c{label}\u201d?", title, width)
    where = ", ".join(part for part in (_module(explanation, index), f"{grids[index]} grid") if part)
    facts = (
        f"Model: {info.name} ({info.weights})  ·  Layer: {stage} ({where})  ·  "
        f"Class {class_idx}: {label}, probability {class_probability(explanation, class_idx):.1%}  ·  Method: {method_title(method)}"
    )
    if counterfactual:
        facts += "  ·  Counterfactual: the map shows what argues AGAINST the class"
    y = _text(draw, (MARGIN, y + 8), facts, body, width, fill=GREY)
    if not info.trained:
        y = _text(draw, (MARGIN, y + 4), "Warning: this model is UNTRAINED (random weights): its predictions and maps mean nothing.", body, width, fill=(170, 60, 0))

    # Five panels and the colour scale in a 3 x 2 grid, two lines of meaning under each.
    cell = (width - 2 * GAP) // 3
    tiles = [fit_into(picture, (cell, cell)) for picture in view.as_list()]
    tile_height = tiles[0].height  # the five panels share the image's size
    height, width_in = explanation.input_tensor.shape[-2:]
    _, _, seen_width, seen_height = explanation.content_box
    seen = f"resized to {seen_width}x{seen_height} pixels"
    if (seen_width, seen_height) != (width_in, height):
        seen += f", letterboxed into {width_in}x{height}"
    words = dict(
        method=method_title(method), layer=stage, grid=grids[index], seen=seen,
        effect="lowered" if counterfactual else "raised",
    )
    y += GAP
    for row in range(2):
        text_bottom = y
        for column in range(3):
            n = row * 3 + column
            x = MARGIN + column * (cell + GAP)
            if n < 5:
                sheet.place(PANEL_TITLES[n], tiles[n], (x + (cell - tiles[n].width) // 2, y))
                name, meaning = (part.format(**words) for part in PANEL_MEANINGS[n])
                bottom = _text(draw, (x, y + tile_height + 10), name, heading, cell)
                text_bottom = max(text_bottom, _text(draw, (x, bottom), meaning, small, cell, fill=GREY))
            else:
                text_bottom = max(text_bottom, _legend(draw, sheet, (x, y), cell, colormap, body, small))
        y = text_bottom + GAP

    # The class at every depth.
    y = _text(draw, (MARGIN, y), f"The same class at layer1 to layer4 ({method_title(method)} overlays)", heading, width)
    depth_note = (
        f"All four stages keep the same {grids[0]} grid of patches here: depth changes what the features mean, not their resolution."
        if len(set(grids)) == 1  # a vision transformer
        else "Early stages see small patches: sharp, local maps that follow edges and colours. The last stage sees whole objects: "
        "a coarse map, but the most class-specific."
    )
    y = _text(draw, (MARGIN, y), depth_note, small, width, fill=GREY)
    quarter = (width - 3 * GAP // 2) // 4
    tiles = [fit_into(picture, (quarter, quarter)) for _, picture in depth]
    row_height = max(t.height for t in tiles)
    y += 10
    for n, tile in enumerate(tiles):
        x = MARGIN + n * (quarter + GAP // 2)
        sheet.place(STAGES[n], tile, (x + (quarter - tile.width) // 2, y + row_height - tile.height))
        draw.text((x + quarter / 2, y + row_height + 8), f"{STAGES[n]} · {grids[n]}", font=body, fill=INK, anchor="ma")
        # The module behind the slider position, e.g. "features.5", in as many lines as it needs.
        for k, line in enumerate(wrap_text(draw, _module(explanation, n).replace(".", ". "), small, quarter)):
            draw.text((x + quarter / 2, y + row_height + 34 + k * 22), line.replace(". ", "."), font=small, fill=GREY, anchor="ma")

    footer = "Grad-CAM: Selvaraju et al., ICCV 2017. Guided backprop: Springenberg et al., ICLR-W 2015. Made with Grad-CAM Explorer."
    draw.text((MARGIN, PAGE_SIZE[1] - MARGIN // 2), footer, font=small, fill=GREY, anchor="ls")
    return sheet


def _legend(draw, sheet: Handout, xy: tuple[int, int], width: int, colormap: str, body, small) -> int:
    """The colour scale of the heatmap and the grey scale of the gradient panels; returns its bottom."""
    x, y = xy
    y = _text(draw, (x, y), "How to read the colours", body, width)
    sheet.place("colour scale", _colour_scale(colormap, width, 28), (x, y + 4))
    y += 40
    draw.text((x, y), "low", font=small, fill=GREY)
    draw.text((x + width, y), "high evidence", font=small, fill=GREY, anchor="ra")
    y += 30
    grey = np.repeat(np.linspace(0, 255, width).astype(np.uint8)[None], 28, axis=0)
    sheet.place("grey scale", Image.fromarray(grey).convert("RGB"), (x, y))
    y += 36
    draw.text((x, y), "lowers", font=small, fill=GREY)
    draw.text((x + width // 2, y), "0", font=small, fill=GREY, anchor="ma")
    draw.text((x + width, y), "raises score", font=small, fill=GREY, anchor="ra")
    y += 30
    note = f"Heatmap colours: {colormap}." + (
        " Its lightness rises steadily, so it also prints well in greyscale."
        if colormap in PRINTABLE_COLORMAPS
        else " For greyscale printing choose cividis or viridis."
    )
    return _text(draw, (x, y), note, small, width, fill=GREY)


def handout_bytes(sheet: Handout | Image.Image, file_format: str = "png") -> bytes:
    """The page as a PNG file, or as a one-page PDF, in memory."""
    page = sheet.page if isinstance(sheet, Handout) else sheet
    buffer = io.BytesIO()
    if file_format.lower() == "pdf":
        page.save(buffer, "PDF", resolution=DPI)
    elif file_format.lower() == "png":
        page.save(buffer, "PNG", dpi=(DPI, DPI))
    else:
        raise ValueError(f"a handout is a png or a pdf, not {file_format!r}")
    return buffer.getvalue()


def save_handout(sheet: Handout | Image.Image, path: str | Path) -> Path:
    """Writes the page as PNG, or as a one-page PDF when the path ends in .pdf."""
    path = Path(path)
    path.write_bytes(handout_bytes(sheet, "pdf" if path.suffix.lower() == ".pdf" else "png"))
    return path
