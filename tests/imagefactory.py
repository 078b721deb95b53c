"""Generated test images: every file a test needs is built here in memory, none is checked in."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """The bytes of `image` saved in format `fmt`."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """A reproducible RGB noise image, which compresses badly and so makes realistic file sizes."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def corner_marked(
    width: int, height: int, block: int, corner: tuple[int, int, int], base: tuple[int, int, int]
) -> Image.Image:
    """A `base`-coloured image with a `block`×`block` square of `corner` colour at its top-left."""
    image = Image.new("RGB", (width, height), base)
    image.paste(corner, (0, 0, block, block))
    return image


def jpeg_with_orientation(image: Image.Image, orientation: int) -> bytes:
    """A high-quality JPEG of `image` whose EXIF Orientation tag is `orientation`."""
    exif = Image.Exif()
    exif[0x0112] = orientation  # the EXIF Orientation tag
    return encode(image, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())


def animated(
    fmt: str,
    colours: list[tuple[int, int, int]],
    size: tuple[int, int] = (16, 16),
    **params: object,
) -> bytes:
    """An animation in `fmt` ("GIF" or "WEBP") with one solid frame per colour."""
    frames = [Image.new("RGB", size, colour) for colour in colours]
    return encode(
        frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params
    )


def png_declaring_size(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims `width`×`height`: a decompression bomb's header, no payload."""
    data = bytearray(encode(Image.new("1", (8, 8)), "PNG"))
    # Signature (8) + chunk length (4) + b"IHDR" (4), then width and height.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    ihdr = bytes(data[12:29])  # chunk type and its 13 data bytes
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def sixteen_bit_png(values: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG holding `values` (a 2-D uint16 array)."""
    return encode(Image.fromarray(values.astype(np.uint16)), "PNG")


# --- not-quite-images, for the reliability tests --------------------------------------------


def pdf_document() -> bytes:
    """A minimal (but well-formed enough to be recognised) one-page PDF."""
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


def html_page() -> bytes:
    """An HTML page, as a browser's "Save link as" on an image URL sometimes produces."""
    return b"<!DOCTYPE html>\n<html><head><title>Image</title></head><body><img src='x.png'></body></html>\n"


def truncated_jpeg(width: int = 200, height: int = 150, keep: float = 0.5, seed: int = 0) -> bytes:
    """A noise JPEG cut off after `keep` of its bytes, like an interrupted download."""
    data = encode(noise(width, height, seed), "JPEG", quality=90)
    return data[: int(len(data) * keep)]


def cmyk_jpeg(width: int, height: int, colour: tuple[int, int, int, int]) -> bytes:
    """A solid CMYK JPEG (as print workflows export them)."""
    return encode(Image.new("CMYK", (width, height), colour), "JPEG", quality=95)
