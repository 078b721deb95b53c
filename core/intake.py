"""Image intake: turn whatever a student uploads into an upright RGB image, or explain why not.

Everything the demo shows and the model sees passes through `read_image`, so it
accepts every source the UI and the tests hand over (paths, bytes, file objects,
numpy arrays, PIL images) and every common pixel layout, and it turns each way
an upload can go wrong into a `BadImageError` whose message says what to do.
Memory stays bounded: the size in the file header is checked before any pixel
is decoded, and JPEGs are decoded at a reduced scale when they are far larger
than needed.

`model_input_size` and `to_model_input` then prepare the whole image (no centre
crop, so the explanation covers everything the student sees) for the network.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from collections.abc import Sequence
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "MAX_PIXELS",
    "BadImageError",
    "ImageSource",
    "fit_within",
    "letterbox_box",
    "model_input_size",
    "read_image",
    "to_model_input",
]

# Stricter than Pillow's own bomb limit (~89 MP warning, ~179 MP error): a
# 64 MP RGBA image is already 256 MB, which is plenty for a shared demo.
MAX_PIXELS = 64_000_000

_SUPPORTED = "Please upload a JPEG, PNG, WebP, GIF, BMP or TIFF image."
_SNIFF_BYTES = 512

# Pillow's plugins report malformed data through many exception types; any of
# them means "this file cannot be decoded" rather than a bug in our code.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)

# ISO-BMFF brands used for HEIC/HEIF stills: the iPhone's default photo format,
# which Pillow cannot read and which would otherwise be mistaken for a video.
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


# Everything `read_image` accepts; see its docstring for the array layouts.
ImageSource = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | np.ndarray | Image.Image
)


class BadImageError(ValueError):
    """The input cannot be used as an image; the message tells the student what to do."""


def read_image(src: ImageSource, max_side: int = 4096) -> Image.Image:
    """Return `src` as a new, fully loaded, upright RGB image, longer side at most `max_side`.

    `src` may be a path (str or os.PathLike), bytes/bytearray/memoryview, a
    binary file object, a numpy array (HxW, HxWx1, HxWx3 or HxWx4 of uint8,
    uint16, float or bool) or a PIL image (which is never modified).
    Raises BadImageError for anything that cannot be read as an image.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    if isinstance(src, Image.Image):
        return _read_pil_image(src, max_side)
    if isinstance(src, np.ndarray):
        return _read_array(src, max_side)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _read_stream(io.BytesIO(bytes(src)), max_side)
    if isinstance(src, (str, os.PathLike)):
        return _read_path(src, max_side)
    if hasattr(src, "read"):
        return _read_stream(_seekable(src), max_side)
    raise BadImageError(
        f"Cannot read an image from a {type(src).__name__}; pass a file path, bytes, "
        "a binary file object, a numpy array or a PIL image."
    )


def model_input_size(
    width: int, height: int, short_side: int = 224, max_long_side: int = 448
) -> tuple[int, int]:
    """Return the (width, height) the model sees.

    The shorter side becomes `short_side` and the longer side scales with it (aspect kept),
    capped at `max_long_side`. The cap bounds the cost of extreme strips (10000×10 becomes
    448×224) at the price of squashing them.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    if not 1 <= short_side <= max_long_side:
        raise ValueError(
            f"need 1 <= short_side <= max_long_side, got {short_side} and {max_long_side}"
        )
    long_side = min(max_long_side, _round(max(width, height) * short_side / min(width, height)))
    return (long_side, short_side) if width >= height else (short_side, long_side)


def letterbox_box(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of a width×height image fitted, aspect kept, into a side×side square."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    scale = side / max(width, height)
    fitted_width, fitted_height = max(1, _round(width * scale)), max(1, _round(height * scale))
    return (side - fitted_width) // 2, (side - fitted_height) // 2, fitted_width, fitted_height


def to_model_input(
    image: Image.Image,
    mean: Sequence[float],
    std: Sequence[float],
    short_side: int = 224,
    max_long_side: int = 448,
    *,
    square: int | None = None,
) -> torch.Tensor:
    """Resize the whole image (no crop) and normalise it into a float32 1×3×h×w tensor.

    The size follows `model_input_size`. A model that takes only one square size (ViT, MaxViT)
    gets ``square``: the image is letterboxed into it (see `letterbox_box`), aspect kept, on a
    border of the mean colour, which is zero after normalisation.
    Non-RGB images are converted the way `read_image` does (transparency on white).
    """
    if len(mean) != 3 or len(std) != 3:
        raise ValueError("mean and std need one value per RGB channel")
    if any(s == 0 for s in std):
        raise ValueError("std values must be non-zero")
    rgb = image if image.mode == "RGB" else _to_rgb(image)
    # Pillow's BILINEAR widens its filter when shrinking, so downscaling is antialiased.
    if square is None:
        size = model_input_size(*rgb.size, short_side, max_long_side)
    else:
        left, top, *size = letterbox_box(*rgb.size, square)
    resized = rgb.resize(tuple(size), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32) / np.float32(255)
    normalised = (pixels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    if square is not None:
        canvas = np.zeros((square, square, 3), dtype=np.float32)
        canvas[top : top + size[1], left : left + size[0]] = normalised
        normalised = canvas
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1))).unsqueeze(0)


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """Return a LANCZOS-downscaled copy with longer side `max_side`, or `image` if it fits."""
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    width, height = image.size
    if max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    size = (max(1, _round(width * scale)), max(1, _round(height * scale)))
    # reducing_gap lets Pillow shrink by an integer factor with reduce() first,
    # which is much faster and loses nothing visible before the final LANCZOS.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# --- sources ------------------------------------------------------------------


def _read_path(path: str | os.PathLike[str], max_side: int) -> Image.Image:
    name = os.fspath(path)
    try:
        file = open(path, "rb")
    except FileNotFoundError as err:
        raise BadImageError(f"No such file: {name}") from err
    except IsADirectoryError as err:
        raise BadImageError(f"{name} is a folder, not an image file.") from err
    # ValueError covers names the OS cannot represent, such as an embedded NUL byte.
    except (OSError, ValueError) as err:
        raise BadImageError(f"Could not open {name}: {err}") from err
    # Reading from the open file (rather than loading it whole) keeps memory
    # bounded when someone picks a multi-gigabyte video by mistake.
    with file:
        return _read_stream(file, max_side)


def _seekable(file: IO[bytes]) -> IO[bytes]:
    # Pillow needs to seek back to the start; sockets and pipes cannot.
    if isinstance(file, io.TextIOBase):
        raise _text_mode_error()
    is_seekable = getattr(file, "seekable", None)
    if callable(is_seekable) and is_seekable():
        return file
    data = file.read()
    if not isinstance(data, (bytes, bytearray)):
        raise _text_mode_error()
    return io.BytesIO(data)


def _read_stream(stream: IO[bytes], max_side: int) -> Image.Image:
    head = _read_head(stream)
    with warnings.catch_warnings():
        # We enforce our own, stricter limit after JPEG draft scaling, so a huge
        # JPEG that decodes small is accepted; Pillow's warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open(stream, head) as image:
            return _decode(image, max_side)


def _read_head(stream: IO[bytes]) -> bytes:
    # The first bytes name the file type when Pillow cannot, and reveal empty uploads.
    try:
        stream.seek(0)
        head = stream.read(_SNIFF_BYTES)
        stream.seek(0)
    except (OSError, ValueError) as err:
        raise BadImageError(f"The file could not be read: {err}") from err
    if not isinstance(head, (bytes, bytearray)):
        raise _text_mode_error()
    if not head:
        raise BadImageError("The file is empty (0 bytes).")
    return bytes(head)


def _open(stream: IO[bytes], head: bytes) -> Image.Image:
    try:
        return Image.open(stream)
    except UnidentifiedImageError as err:
        raise _unreadable_error(head) from err
    except Image.DecompressionBombError as err:
        raise _too_large_error(str(err)) from err
    except _DECODE_ERRORS as err:
        raise BadImageError(_corrupt_message(_image_format(head))) from err


def _decode(image: Image.Image, max_side: int) -> Image.Image:
    try:
        # Only JPEG can decode at 1/2, 1/4 or 1/8 scale; for other formats draft is a no-op.
        image.draft("RGB", (max_side, max_side))
        _check_size(image.size)
        image.load()
        return _normalise(image, max_side)
    except BadImageError:
        raise
    except Image.DecompressionBombError as err:
        raise _too_large_error(str(err)) from err
    except _DECODE_ERRORS as err:
        raise BadImageError(_corrupt_message(image.format)) from err


def _read_pil_image(image: Image.Image, max_side: int) -> Image.Image:
    _check_size(image.size)
    try:
        # A copy loads lazily opened files and leaves the caller's object as it was.
        copy = image.copy()
    except _DECODE_ERRORS as err:
        raise BadImageError(_corrupt_message(image.format)) from err
    return _normalise(copy, max_side)


def _read_array(array: np.ndarray, max_side: int) -> Image.Image:
    if array.size == 0:
        raise BadImageError(f"The image array is empty (shape {array.shape}).")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise BadImageError(
            f"An image array must have shape HxW, HxWx1, HxWx3 or HxWx4 (channels last); "
            f"got {array.shape}."
        )
    _check_size((array.shape[1], array.shape[0]))
    pixels = np.ascontiguousarray(_array_to_uint8(array))
    return _normalise(Image.fromarray(pixels), max_side)


# --- pixels -------------------------------------------------------------------


def _normalise(image: Image.Image, max_side: int) -> Image.Image:
    return fit_within(_to_rgb(_upright(image)), max_side)


def _upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        # Broken EXIF only loses the orientation hint; the pixels are still good,
        # so rejecting the photo would be worse than showing it as stored.
        warnings.warn("Corrupt EXIF metadata; the image's orientation was ignored.", stacklevel=2)
        return image.copy()


def _to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's own convert() clips 16-bit and float data instead of scaling it.
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return Image.fromarray(_high_depth_to_uint8(image)).convert("RGB")
    try:
        if image.has_transparency_data:
            return _flatten_on_white(image.convert("RGBA"))
        return image.convert("RGB")
    except ValueError as err:
        raise BadImageError(
            f"Images in colour mode {image.mode} are not supported; "
            "save it as an RGB JPEG or PNG and upload that."
        ) from err


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    # White matches how browsers and viewers show transparent areas on a page.
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _high_depth_to_uint8(image: Image.Image) -> np.ndarray:
    values = np.asarray(image)
    if image.mode == "F":
        return _float_to_uint8(values)
    # Mode "I" usually carries 16-bit data (TIFF, old PNG decoders); anything
    # outside that range has no natural scale, so stretch it instead.
    if values.min() >= 0 and values.max() <= 65535:
        return _uint16_to_uint8(values)
    return _stretch_to_uint8(values)


def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:
        return _uint16_to_uint8(array)
    if array.dtype.kind == "f":
        return _float_to_uint8(array)
    raise BadImageError(
        f"Unsupported image array type {array.dtype}; use uint8 (0-255), uint16, float or bool."
    )


def _uint16_to_uint8(values: np.ndarray) -> np.ndarray:
    # Rounds v / 257 to the nearest integer, so 65535 -> 255 and 32896 -> 128.
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    finite = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if finite.min() >= 0 and finite.max() <= 1:
        return np.rint(finite * 255).astype(np.uint8)
    return _stretch_to_uint8(finite)


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    # Min-max normalisation; a constant image has no contrast to stretch and becomes black.
    low = float(values.min())
    span = float(values.max()) - low or 1.0
    stretched = (values.astype(np.float32) - np.float32(low)) * np.float32(255 / span)
    return np.clip(np.rint(stretched), 0, 255).astype(np.uint8)


# --- errors -------------------------------------------------------------------


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise BadImageError(f"The image has no pixels ({width}×{height}).")
    if width * height > MAX_PIXELS:
        raise BadImageError(
            f"This image is too large: {width}×{height} pixels. "
            f"The limit is {MAX_PIXELS // 1_000_000} megapixels; please upload a smaller image."
        )


def _too_large_error(pillow_message: str) -> BadImageError:
    # Pillow refuses before returning the image, so only the pixel count in its message survives.
    match = re.search(r"\((\d+) pixels\)", pillow_message)
    size = f": {int(match.group(1)) / 1e6:,.0f} megapixels" if match else ""
    return BadImageError(
        f"This image is too large{size}. "
        f"The limit is {MAX_PIXELS // 1_000_000} megapixels; please upload a smaller image."
    )


def _corrupt_message(image_format: str | None) -> str:
    guess = f" (truncated {image_format}?)" if image_format else ""
    return (
        f"The image file is incomplete or corrupt{guess}. The upload may have been cut off; "
        "please save or download the image again and re-upload it."
    )


def _text_mode_error() -> BadImageError:
    return BadImageError("The file was opened in text mode; open it in binary mode ('rb').")


def _unreadable_error(head: bytes) -> BadImageError:
    """Explain a file Pillow could not identify, naming what it looks like."""
    image_format = _image_format(head)
    if image_format:
        return BadImageError(_corrupt_message(image_format))
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    if _is_svg(text):
        return BadImageError(
            "SVG vector images are not supported; export a PNG or JPEG and upload that."
        )
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return BadImageError(
            "HEIC/HEIF photos are not supported; export the photo as JPEG "
            "(on iPhone: Settings > Camera > Formats > Most Compatible) and upload that."
        )
    kind = _non_image_kind(head, text)
    if kind:
        return BadImageError(f"This file is not an image (it looks like {kind}). {_SUPPORTED}")
    return BadImageError(f"This file is not in an image format that can be read. {_SUPPORTED}")


def _image_format(head: bytes) -> str | None:
    """Name the image format the signature announces, even if the rest of the file is broken."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    # "BM" alone is too weak a signature (text can start with it), so also
    # require the reserved header bytes, which are always zero in a BMP.
    if head.startswith(b"BM") and head[6:10] == b"\x00\x00\x00\x00":
        return "BMP"
    return None


def _is_svg(text: bytes) -> bool:
    return text.startswith(b"<svg") or (
        text.startswith((b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in text
    )


def _non_image_kind(head: bytes, text: bytes) -> str | None:
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive or an Office document"
    if head.startswith(b"\x1f\x8b"):
        return "a GZIP-compressed file"
    if head[4:8] == b"ftyp":
        return "an MP4/MOV video"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML web page"
    if _is_text(head):
        return "plain text"
    return None


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut off at the end of the sample is still text.
        if err.start < len(head) - 3:
            return False
        decoded = head[: err.start].decode("utf-8")
    return all(char >= " " or char in "\t\n\r\f" for char in decoded) and "\x7f" not in decoded


def _round(value: float) -> int:
    # Half-up rather than Python's round-half-to-even, so sizes are predictable.
    return int(value + 0.5)
