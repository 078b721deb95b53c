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



@dataclass(frozen=True)
class HandoutWords:
    """Every sentence on the page, English by default; a caller passes another language's.

    Fields in braces are filled in by :func:`handout`. ``panels`` gives each of the five panels
    a (title, meaning) pair, in PANEL_TITLES order.
    """

    title_for: str = "What does {model} look at for “{label}”?"
    title_against: str = "What does {model} look at against “{label}”?"
    facts: str = "Model: {model} ({weights})  ·  Layer: {layer} ({where})  ·  Class {index}: {label}, probability {probability}  ·  Method: {method}"
    grid: str = "{grid} grid"
    counterfactual: str = "Counterfactual: the map shows what argues AGAINST the class"
    untrained: str = "Warning: this model is UNTRAINED (random weights): its predictions and maps mean nothing."
    seen: str = "resized to {width}x{height} pixels"
    letterboxed: str = ", letterboxed into {width}x{height}"
    raised: str = "raised"
    lowered: str = "lowered"
    panels: tuple[tuple[str, str], ...] = (
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
    depth: str = "The same class at layer1 to layer4 ({method} overlays)"
    depth_same_grid: str = "All four stages keep the same {grid} grid of patches here: depth changes what the features mean, not their resolution."
    depth_grids: str = (
        "Early stages see small patches: sharp, local maps that follow edges and colours. The last stage sees whole objects: "
        "a coarse map, but the most class-specific."
    )
    footer: str = "Grad-CAM: Selvaraju et al., ICCV 2017. Guided backprop: Springenberg et al., ICLR-W 2015. Made with Grad-CAM Explorer."
    colours: str = "How to read the colours"
    low: str = "low"
    high: str = "high evidence"
    lowers: str = "lowers"
    raises: str = "raises score"
    colormap_note: str = "Heatmap colours: {colormap}."
    printable: str = " Its lightness rises steadily, so it also prints well in greyscale."
    not_printable: str = " For greyscale printing choose cividis or viridis."


ENGLISH = HandoutWords()


def _fonts(font: str | Path | None):
    """A function of the size: Pillow's bundled font, or the given file (for scripts it lacks)."""
    if font is None:
        return lambda size: ImageFont.load_default(size=size)
    return lambda size: ImageFont.truetype(str(font), size=size)


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
    words: HandoutWords = ENGLISH,
    font: str | Path | None = None,
) -> Handout:
    """The page for one view: RGB, PAGE_SIZE, white; boxes named by PANEL_TITLES and STAGES.

    ``words`` are its sentences (another language's :class:`HandoutWords`), and ``font`` a
    TrueType file that has their letters; Pillow's bundled font has only Latin ones.
    """
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
    sized = _fonts(font)
    title, heading, body, small = sized(40), sized(26), sized(19), sized(17)

    title_text = words.title_against if counterfactual else words.title_for
    y = _text(draw, (MARGIN, MARGIN), title_text.format(model=info.name, label=label), title, width)
    where = ", ".join(part for part in (_module(explanation, index), words.grid.format(grid=grids[index])) if part)
    facts = words.facts.format(
        model=info.name, weights=info.weights, layer=stage, where=where, index=class_idx, label=label,
        probability=f"{class_probability(explanation, class_idx):.1%}", method=method_title(method),
    )
    if counterfactual:
        facts += "  ·  " + words.counterfactual
    y = _text(draw, (MARGIN, y + 8), facts, body, width, fill=GREY)
    if not info.trained:
        y = _text(draw, (MARGIN, y + 4), words.untrained, body, width, fill=(170, 60, 0))

    # Five panels and the colour scale in a 3 x 2 grid, two lines of meaning under each.
    cell = (width - 2 * GAP) // 3
    tiles = [fit_into(picture, (cell, cell)) for picture in view.as_list()]
    tile_height = tiles[0].height  # the five panels share the image's size
    height, width_in = explanation.input_tensor.shape[-2:]
    _, _, seen_width, seen_height = explanation.content_box
    seen = words.seen.format(width=seen_width, height=seen_height)
    if (seen_width, seen_height) != (width_in, height):
        seen += words.letterboxed.format(width=width_in, height=height)
    fields = dict(
        method=method_title(method), layer=stage, grid=grids[index], seen=seen,
        effect=words.lowered if counterfactual else words.raised,
    )
    y += GAP
    for row in range(2):
        text_bottom = y
        for column in range(3):
            n = row * 3 + column
            x = MARGIN + column * (cell + GAP)
            if n < 5:
                sheet.place(PANEL_TITLES[n], tiles[n], (x + (cell - tiles[n].width) // 2, y))
                name, meaning = (part.format(**fields) for part in words.panels[n])
                bottom = _text(draw, (x, y + tile_height + 10), name, heading, cell)
                text_bottom = max(text_bottom, _text(draw, (x, bottom), meaning, small, cell, fill=GREY))
            else:
                text_bottom = max(text_bottom, _legend(draw, sheet, (x, y), cell, colormap, body, small, words))
        y = text_bottom + GAP

    # The class at every depth.
    y = _text(draw, (MARGIN, y), words.depth.format(method=method_title(method)), heading, width)
    depth_note = (
        words.depth_same_grid.format(grid=grids[0])
        if len(set(grids)) == 1  # a vision transformer
        else words.depth_grids
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

    draw.text((MARGIN, PAGE_SIZE[1] - MARGIN // 2), words.footer, font=small, fill=GREY, anchor="ls")
    return sheet


def _legend(draw, sheet: Handout, xy: tuple[int, int], width: int, colormap: str, body, small, words: HandoutWords) -> int:
    """The colour scale of the heatmap and the grey scale of the gradient panels; returns its bottom."""
    x, y = xy
    y = _text(draw, (x, y), words.colours, body, width)
    sheet.place("colour scale", _colour_scale(colormap, width, 28), (x, y + 4))
    y += 40
    draw.text((x, y), words.low, font=small, fill=GREY)
    draw.text((x + width, y), words.high, font=small, fill=GREY, anchor="ra")
    y += 30
    grey = np.repeat(np.linspace(0, 255, width).astype(np.uint8)[None], 28, axis=0)
    sheet.place("grey scale", Image.fromarray(grey).convert("RGB"), (x, y))
    y += 36
    draw.text((x, y), words.lowers, font=small, fill=GREY)
    draw.text((x + width // 2, y), "0", font=small, fill=GREY, anchor="ma")
    draw.text((x + width, y), words.raises, font=small, fill=GREY, anchor="ra")
    y += 30
    note = words.colormap_note.format(colormap=colormap) + (words.printable if colormap in PRINTABLE_COLORMAPS else words.not_printable)
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
