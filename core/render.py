"""Turning maps into pictures: colormaps, overlays, gradient images and a captioned strip.

Everything here is RGB uint8 in, RGB uint8 out, and knows nothing about models. OpenCV supplies
the colormaps, read once into 256-entry lookup tables and flipped from its BGR order to RGB here,
in one place, so no caller ever sees BGR.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# cividis was designed to read the same for viewers with red-green colour blindness.
COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "cividis": cv2.COLORMAP_CIVIDIS,
}
DEFAULT_COLORMAP = "jet"


@lru_cache(maxsize=None)
def colormap_lut(name: str) -> np.ndarray:
    """The colormap as a (256, 3) RGB uint8 table."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose from {', '.join(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, COLORMAPS[name]).reshape(256, 3)
    lut = np.ascontiguousarray(bgr[:, ::-1])
    lut.flags.writeable = False
    return lut


def heatmap(cam01: np.ndarray, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """A [0, 1] map coloured as an (H, W, 3) RGB image of the same size."""
    levels = np.rint(np.clip(cam01, 0.0, 1.0) * 255.0).astype(np.uint8)
    return colormap_lut(colormap)[levels]


def as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image, got {array.dtype} {array.shape}")
    return array


def overlay(image: Image.Image | np.ndarray, cam01: np.ndarray, colormap: str = DEFAULT_COLORMAP, opacity: float = 0.5) -> np.ndarray:
    """The heatmap blended onto the image: (1 − opacity)·image + opacity·heatmap."""
    base = as_rgb_array(image)
    if base.shape[:2] != cam01.shape:
        raise ValueError(f"map {cam01.shape} and image {base.shape[:2]} differ in size")
    opacity = float(np.clip(opacity, 0.0, 1.0))
    blended = base * (1.0 - opacity) + heatmap(cam01, colormap) * opacity
    return np.rint(blended).astype(np.uint8)


def draw_box(picture: Image.Image | np.ndarray, box: Sequence[int] | None, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy of the picture with ``box`` (left, top, right, bottom; right and bottom exclusive,
    as :mod:`core.localise` gives it) outlined; an unchanged copy when the box is None.

    The line is about 1% of the picture's shorter side (at least 2 px), in ``colour`` on a black
    rim, so it reads over every colormap.
    """
    base = as_rgb_array(picture)
    out = Image.fromarray(base.copy())
    if box is None:
        return np.asarray(out)
    left, top, right, bottom = (int(v) for v in box)
    if right <= left or bottom <= top:
        raise ValueError(f"a box needs right > left and bottom > top; got {tuple(box)}")
    line = max(2, round(min(base.shape[:2]) / 100))
    draw = ImageDraw.Draw(out)
    # Pillow's rectangle includes its far corner; the box's right and bottom are exclusive.
    draw.rectangle([left, top, right - 1, bottom - 1], outline=(0, 0, 0), width=line + 2)
    if right - left > 2 and bottom - top > 2:  # room for the colour inside the rim
        draw.rectangle([left + 1, top + 1, right - 2, bottom - 2], outline=colour, width=line)
    return np.asarray(out)


def gradient_image(gradient: np.ndarray, spread_percentile: float = 99.0) -> np.ndarray:
    """A signed (H, W, 3) gradient shown the usual way: zero at mid-grey, clipped at a robust spread.

    The gradient is centred on its mean and divided by the given percentile of its absolute
    value, so a few extreme pixels cannot wash the picture out; ±spread maps to 0 and 255.
    """
    centred = gradient - gradient.mean()
    spread = float(np.percentile(np.abs(centred), spread_percentile))
    if not np.isfinite(spread) or spread <= 0:
        return np.full(gradient.shape, 128, dtype=np.uint8)
    return np.rint(np.clip(0.5 + 0.5 * centred / spread, 0.0, 1.0) * 255.0).astype(np.uint8)


def strip(panels: Sequence[tuple[str, Image.Image | np.ndarray]], *, height: int = 320, gap: int = 8) -> Image.Image:
    """Panels side by side at one height, each captioned underneath, on white: for handouts."""
    font_size = max(12, height // 14)
    font = ImageFont.load_default(size=font_size)
    caption_height = int(font_size * 1.8)
    tiles = []
    for caption, panel in panels:
        picture = Image.fromarray(as_rgb_array(panel))
        width = max(1, round(picture.width * height / picture.height))
        tiles.append((caption, picture.resize((width, height), Image.Resampling.LANCZOS)))
    total_width = sum(tile.width for _, tile in tiles) + gap * (len(tiles) + 1)
    sheet = Image.new("RGB", (total_width, height + caption_height + 2 * gap), "white")
    draw = ImageDraw.Draw(sheet)
    x = gap
    for caption, tile in tiles:
        sheet.paste(tile, (x, gap))
        draw.text((x + tile.width / 2, gap + height + caption_height / 2), caption, fill="black", font=font, anchor="mm")
        x += tile.width + gap
    return sheet


def grid(
    cells: Sequence[Sequence[Image.Image | np.ndarray]],
    *,
    row_titles: Sequence[str],
    column_titles: Sequence[str],
    captions: Sequence[Sequence[str]] | None = None,
    tile: int = 160,
    gap: int = 8,
) -> Image.Image:
    """Pictures in rows and columns on white: column titles on top, row titles on the left, and
    an optional caption under each picture. Each picture is fitted into a tile×tile square, and
    each row is as tall as its tallest picture (wide pictures leave no empty band)."""
    font_size = max(12, tile // 11)
    font = ImageFont.load_default(size=font_size)
    line = int(font_size * 1.5)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = int(max((measure.textlength(t, font=font) for t in row_titles), default=0)) + 2 * gap
    top = line + gap
    caption_height = line if captions is not None else 0
    fitted = []
    for row in cells:
        pictures = [Image.fromarray(as_rgb_array(cell)) for cell in row]
        scales = [tile / max(p.size) for p in pictures]
        fitted.append(
            [p.resize((max(1, round(p.width * k)), max(1, round(p.height * k))), Image.Resampling.LANCZOS) for p, k in zip(pictures, scales)]
        )
    heights = [max((p.height for p in row), default=0) for row in fitted]
    columns = max(len(row) for row in cells)
    width = left + columns * (tile + gap) + gap
    height = top + sum(h + caption_height + gap for h in heights) + gap
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(column_titles):
        draw.text((left + c * (tile + gap) + tile / 2, top / 2), title, fill="black", font=font, anchor="mm")
    y = top
    for r, (row, row_height) in enumerate(zip(fitted, heights)):
        draw.text((gap, y + row_height / 2), row_titles[r], fill="black", font=font, anchor="lm")
        for c, picture in enumerate(row):
            x = left + c * (tile + gap)
            sheet.paste(picture, (x + (tile - picture.width) // 2, y + (row_height - picture.height) // 2))
            if captions is not None:
                draw.text((x + tile / 2, y + row_height + caption_height / 2), captions[r][c], fill="black", font=font, anchor="mm")
        y += row_height + caption_height + gap
    return sheet


# ----- live mode: a label on the frame, a notice instead of a frame, and lossy encoding --------


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font, loaded once per size: live mode draws on every frame.
    return ImageFont.load_default(size=size)


def wrap_text(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> list[str]:
    """Greedy word wrap to a width in pixels; each newline in ``text`` starts a new paragraph."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if line and draw.textlength(trial, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def label_bar(picture: np.ndarray, text: str) -> np.ndarray:
    """A copy of the picture with ``text`` in white on a dark band along its bottom edge.

    The band darkens what is under it rather than hiding it, and its height follows the
    picture's, so the label stays readable when a projector scales the frame up.
    """
    base = as_rgb_array(picture)
    height, width = base.shape[:2]
    band = max(14, height // 10)
    out = base.copy()
    out[height - band :] = out[height - band :] // 4
    image = Image.fromarray(out)
    font = _font(max(10, int(band * 0.62)))
    ImageDraw.Draw(image).text((band // 3, height - band / 2), text, fill="white", font=font, anchor="lm")
    return np.asarray(image)


def text_card(text: str, size: tuple[int, int] = (448, 336)) -> np.ndarray:
    """A (height, width, 3) dark card with ``text`` wrapped to fit, where a picture cannot be shown."""
    width, height = size
    image = Image.new("RGB", (width, height), (32, 32, 40))
    font = _font(max(12, height // 16))
    draw = ImageDraw.Draw(image)
    lines = wrap_text(draw, text, font, width * 0.88)
    draw.multiline_text((width / 2, height / 2), "\n".join(lines), fill="white", font=font, anchor="mm", align="center", spacing=6)
    return np.asarray(image)


#: OpenCV's PNG with Huffman-only deflate: five 640×427 panels took 69 ms of CPU against 120 ms
#: for Pillow at zlib level 1, and the files came out 10% smaller.
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]


def encode_lossless(picture: np.ndarray, suffix: str = ".png") -> bytes:
    """Lossless PNG or WebP bytes of an RGB picture: what the browser decodes is exactly these values.

    WebP through Pillow at its fastest effort (method 0): a 384×192 photo in 9 ms and 106 KB,
    against 16 ms and 149 KB as PNG; OpenCV's lossless WebP took 60 times longer.
    """
    rgb = as_rgb_array(picture)
    if suffix == ".webp":
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "WEBP", lossless=True, method=0, quality=0)
        return buffer.getvalue()
    ok, data = cv2.imencode(suffix, rgb[:, :, ::-1], PNG_PARAMS)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {picture.shape} picture as {suffix}")
    return data.tobytes()


def encode_jpeg(picture: np.ndarray, quality: int = 80) -> bytes:
    """Lossy JPEG bytes: right for a live view (small, fast to encode and decode), never for a panel."""
    ok, data = cv2.imencode(".jpg", as_rgb_array(picture)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the picture as JPEG")
    return data.tobytes()
