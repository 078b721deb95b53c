"""Tests for core.intake: every source type, pixel layout and failure mode an upload can have.

All images are generated here (see tests/imagefactory.py); nothing is downloaded or checked in.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from core import intake
from core.intake import BadImageError, fit_within, model_input_size, read_image, to_model_input
from tests.imagefactory import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    animated,
    corner_marked,
    encode,
    jpeg_with_orientation,
    noise,
    png_declaring_size,
    sixteen_bit_png,
)

# Lossy formats shift colours slightly; a wrong colour is off by far more than this.
JPEG_TOLERANCE = 40


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> None:
    differences = [abs(a - e) for a, e in zip(actual, expected, strict=True)]
    assert max(differences) <= tolerance, (actual, expected)


def assert_rgb(image: Image.Image, size: tuple[int, int]) -> None:
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert image.size == size


def bad_image_message(src: object, **kwargs: object) -> str:
    with pytest.raises(BadImageError) as caught:
        read_image(src, **kwargs)
    return str(caught.value)


@pytest.fixture
def png_bytes() -> bytes:
    return encode(corner_marked(30, 20, 10, RED, BLUE), "PNG")


# --- sources -----------------------------------------------------------------


def test_reads_pathlib_path(tmp_path, png_bytes):
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes)
    image = read_image(path)
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED
    assert image.getpixel((29, 19)) == BLUE


def test_reads_str_path(tmp_path, png_bytes):
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes)
    image = read_image(str(path))
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda wrap: wrap.__name__)
def test_reads_bytes_like(png_bytes, wrap):
    image = read_image(wrap(png_bytes))
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED


def test_reads_binary_file_object(png_bytes):
    image = read_image(io.BytesIO(png_bytes))
    assert_rgb(image, (30, 20))
    assert image.getpixel((29, 0)) == BLUE


def test_reads_open_file(tmp_path, png_bytes):
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes)
    with open(path, "rb") as file:
        image = read_image(file)
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED


def test_reads_non_seekable_file_object(png_bytes):
    class Pipe:
        """Only read(), like a socket or a pipe."""

        def __init__(self, data: bytes) -> None:
            self._buffer = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._buffer.read(size)

    image = read_image(Pipe(png_bytes))
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED


def test_text_mode_file_is_rejected(tmp_path, png_bytes):
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes)
    with open(path, encoding="latin-1") as file:
        assert "binary mode" in bad_image_message(file)


def test_unsupported_source_type_is_rejected():
    assert "Cannot read an image from a int" in bad_image_message(42)


def test_reads_uint8_arrays():
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[0, 0] = (10, 20, 30)
    image = read_image(rgb)
    assert_rgb(image, (6, 4))
    assert image.getpixel((0, 0)) == (10, 20, 30)
    assert image.getpixel((5, 3)) == (200, 0, 0)


@pytest.mark.parametrize("shape", [(3, 5), (3, 5, 1)])
def test_reads_greyscale_arrays(shape):
    grey = np.full(shape, 77, dtype=np.uint8)
    image = read_image(grey)
    assert_rgb(image, (5, 3))
    assert image.getpixel((4, 2)) == (77, 77, 77)


def test_uint16_array_is_scaled_not_clipped():
    values = np.array([[65535, 32896, 1000, 0]], dtype=np.uint16)
    image = read_image(values)
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [255, 128, 4, 0]


def test_float_array_in_unit_range_is_multiplied_by_255():
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    image = read_image(values)
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_float_array_outside_unit_range_is_min_max_normalised():
    values = np.array([[-2.0, 0.0, 2.0]], dtype=np.float64)
    image = read_image(values)
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_float_array_non_finite_values_become_zero():
    values = np.array([[np.nan, np.inf, -np.inf, 1.0]], dtype=np.float32)
    image = read_image(values)
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [0, 0, 0, 255]


def test_bool_array_becomes_black_and_white():
    values = np.array([[True, False]])
    image = read_image(values)
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 0)) == (0, 0, 0)


def test_rgba_array_is_composited_on_white():
    values = np.zeros((1, 2, 4), dtype=np.uint8)
    values[0, 0] = (255, 0, 0, 0)  # fully transparent red
    values[0, 1] = (0, 0, 255, 255)  # opaque blue
    image = read_image(values)
    assert_rgb(image, (2, 1))
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 0)) == BLUE


def test_non_contiguous_array_is_read():
    values = np.zeros((4, 6, 3), dtype=np.uint8)
    values[:, :, 2] = 255
    image = read_image(values[:, ::2])  # a strided view
    assert_rgb(image, (3, 4))
    assert image.getpixel((2, 3)) == BLUE


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((1, 4, 4, 3), dtype=np.uint8),
        np.zeros((0, 4, 3), dtype=np.uint8),
        np.zeros((4, 0), dtype=np.uint8),
        np.zeros((3, 8, 8), dtype=np.uint8),
        np.zeros((4, 4, 2), dtype=np.uint8),
        np.zeros(5, dtype=np.uint8),
        np.full((2, 2), None, dtype=object),
        np.zeros((2, 2), dtype=np.complex64),
        np.zeros((2, 2), dtype=np.int64),
    ],
    ids=[
        "4d", "zero-rows", "zero-cols", "channels-first", "two-channels", "1d", "object", "complex",
        "int64",
    ],
)
def test_unusable_arrays_are_rejected(array):
    message = bad_image_message(array)
    assert message  # a reason is always given
    assert "array" in message


def test_reads_pil_image_as_new_rgb_image():
    source = corner_marked(30, 20, 10, RED, BLUE)
    image = read_image(source)
    assert image is not source
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED


def test_pil_image_is_not_mutated():
    source = Image.new("RGBA", (30, 20), (0, 255, 0, 0))
    source.paste((255, 0, 0, 255), (0, 0, 5, 5))
    exif = Image.Exif()
    exif[0x0112] = 6
    source.info["exif"] = exif.tobytes()
    before = (source.mode, source.size, source.tobytes(), dict(source.info))

    image = read_image(source, max_side=10)

    assert (source.mode, source.size, source.tobytes(), dict(source.info)) == before
    assert image.size == (7, 10)  # rotated by the EXIF tag and shrunk, but only the copy


def test_reads_lazily_opened_pil_image(png_bytes):
    with Image.open(io.BytesIO(png_bytes)) as opened:
        image = read_image(opened)
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED


# --- orientation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "upright_corner"),
    [
        # Orientation 6: the camera was turned clockwise; showing it upright turns the
        # stored image 90° clockwise, which moves its top-left corner to the top-right.
        (6, "top-right"),
        # Orientation 8: turned the other way; the top-left corner ends up bottom-left.
        (8, "bottom-left"),
    ],
)
def test_exif_orientation_is_applied(orientation, upright_corner):
    stored = corner_marked(64, 40, 16, RED, BLUE)
    image = read_image(jpeg_with_orientation(stored, orientation))

    assert_rgb(image, (40, 64))
    width, height = image.size
    corners = {
        "top-left": (8, 8),
        "top-right": (width - 9, 8),
        "bottom-left": (8, height - 9),
        "bottom-right": (width - 9, height - 9),
    }
    for name, xy in corners.items():
        expected = RED if name == upright_corner else BLUE
        assert_close(image.getpixel(xy), expected, JPEG_TOLERANCE)


def test_corrupt_exif_keeps_the_image_and_warns():
    source = corner_marked(30, 20, 10, RED, BLUE)
    source.info["exif"] = b"not exif at all"
    with pytest.warns(UserWarning, match="EXIF"):
        image = read_image(source)
    assert_rgb(image, (30, 20))
    assert image.getpixel((0, 0)) == RED


def test_jpeg_without_orientation_is_unchanged():
    stored = corner_marked(64, 40, 16, RED, BLUE)
    image = read_image(encode(stored, "JPEG", quality=95, subsampling=0))
    assert image.size == (64, 40)
    assert_close(image.getpixel((8, 8)), RED, JPEG_TOLERANCE)


# --- colour modes ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "1"])
def test_greyscale_files_become_rgb(mode):
    grey = Image.new(mode, (4, 3), 255)
    grey.putpixel((0, 0), 0)
    image = read_image(encode(grey, "PNG"))
    assert_rgb(image, (4, 3))
    assert image.getpixel((0, 0)) == (0, 0, 0)
    assert image.getpixel((3, 2)) == WHITE


def palette_image() -> Image.Image:
    image = Image.new("P", (3, 1))
    image.putpalette([*RED, *GREEN, *BLUE])
    image.putdata([0, 1, 2])
    return image


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP"])
def test_palette_files_become_rgb(fmt):
    image = read_image(encode(palette_image(), fmt))
    assert_rgb(image, (3, 1))
    assert [image.getpixel((x, 0)) for x in range(3)] == [RED, GREEN, BLUE]


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_composited_on_white(fmt):
    image = read_image(encode(palette_image(), fmt, transparency=1))
    assert [image.getpixel((x, 0)) for x in range(3)] == [RED, WHITE, BLUE]


def test_rgba_png_is_composited_on_white():
    rgba = Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    rgba.putpixel((1, 1), (0, 0, 255, 255))
    rgba.putpixel((0, 1), (0, 0, 0, 128))
    image = read_image(encode(rgba, "PNG"))
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 1)) == BLUE
    assert_close(image.getpixel((0, 1)), (127, 127, 127), 1)  # half-transparent black over white


def test_la_png_is_composited_on_white():
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (60, 255))
    image = read_image(encode(la, "PNG"))
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 0)) == (60, 60, 60)


def test_pa_image_is_composited_on_white():
    pa = palette_image().convert("PA")
    pa.putpixel((0, 0), (0, 0))  # red, fully transparent
    image = read_image(pa)
    assert [image.getpixel((x, 0)) for x in range(3)] == [WHITE, GREEN, BLUE]


def test_rgb_png_with_transparent_colour_key_is_composited_on_white():
    rgb = Image.new("RGB", (2, 1), GREEN)
    rgb.putpixel((1, 0), RED)
    image = read_image(encode(rgb, "PNG", transparency=GREEN))
    assert image.getpixel((0, 0)) == WHITE
    assert image.getpixel((1, 0)) == RED


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((0, 255, 255, 0), RED),
        ((255, 255, 0, 0), BLUE),
        ((0, 0, 0, 255), (0, 0, 0)),
        ((0, 0, 0, 0), WHITE),
    ],
)
def test_cmyk_tiff_is_converted(cmyk, rgb):
    image = read_image(encode(Image.new("CMYK", (2, 2), cmyk), "TIFF"))
    assert_rgb(image, (2, 2))
    assert image.getpixel((1, 1)) == rgb


def test_cmyk_jpeg_is_converted():
    image = read_image(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    assert_rgb(image, (16, 16))
    assert_close(image.getpixel((8, 8)), RED, JPEG_TOLERANCE)


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.array([[65535, 32896, 1000, 0]], dtype=np.uint16)
    data = sixteen_bit_png(values)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really a 16-bit file
    image = read_image(data)
    assert_rgb(image, (4, 1))
    # Pillow's own convert("RGB") would clip the middle two values to 255.
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [255, 128, 4, 0]


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_sixteen_bit_pil_modes_are_scaled(mode):
    dtype = "<u2" if mode == "I;16" else ">u2"
    source = Image.frombytes(mode, (2, 1), np.array([65535, 32896], dtype=dtype).tobytes())
    image = read_image(source)
    assert [image.getpixel((x, 0))[0] for x in range(2)] == [255, 128]


def test_mode_i_holding_sixteen_bit_data_is_scaled():
    source = Image.fromarray(np.array([[65535, 32896, 0]], dtype=np.int32))
    assert source.mode == "I"
    image = read_image(source)
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [255, 128, 0]


def test_mode_i_outside_sixteen_bit_range_is_stretched():
    source = Image.fromarray(np.array([[-100, 0, 100]], dtype=np.int32))
    image = read_image(source)
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_float_tiff_in_unit_range_is_scaled():
    source = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert source.mode == "F"
    image = read_image(encode(source, "TIFF"))
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_float_image_outside_unit_range_is_normalised_and_nan_is_zero():
    source = Image.fromarray(np.array([[10.0, 20.0, 30.0, np.nan]], dtype=np.float32))
    image = read_image(source)
    # NaN becomes 0 first, so the range is 0..30.
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [85, 170, 255, 0]


# --- animations, sizes -------------------------------------------------------


def test_animated_gif_gives_first_frame():
    data = animated("GIF", [RED, GREEN, BLUE])
    assert Image.open(io.BytesIO(data)).n_frames == 3
    image = read_image(data)
    assert_rgb(image, (16, 16))
    assert image.getpixel((8, 8)) == RED


def test_animated_webp_gives_first_frame():
    data = animated("WEBP", [GREEN, RED], lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    image = read_image(data)
    assert_rgb(image, (16, 16))
    assert image.getpixel((8, 8)) == GREEN


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_one_pixel_image(fmt):
    image = read_image(encode(Image.new("RGB", (1, 1), RED), fmt))
    assert_rgb(image, (1, 1))
    assert_close(image.getpixel((0, 0)), RED, JPEG_TOLERANCE)


def test_one_pixel_array():
    image = read_image(np.array([[[1, 2, 3]]], dtype=np.uint8))
    assert_rgb(image, (1, 1))
    assert image.getpixel((0, 0)) == (1, 2, 3)


def test_long_strip_keeps_aspect_and_model_input_is_capped():
    strip = Image.new("RGB", (10000, 10), RED)
    image = read_image(encode(strip, "PNG"))
    assert_rgb(image, (4096, 4))  # 10000×10 scaled to a long side of 4096
    assert read_image(encode(strip, "PNG"), max_side=10000).size == (10000, 10)
    tensor = to_model_input(image, mean=(0, 0, 0), std=(1, 1, 1))
    assert tensor.shape == (1, 3, 224, 448)


def test_large_jpeg_is_reduced_to_max_side():
    data = encode(noise(6000, 4000), "JPEG", quality=80)
    image = read_image(data)
    assert_rgb(image, (4096, round(4000 * 4096 / 6000)))
    small = read_image(data, max_side=1000)
    assert_rgb(small, (1000, round(4000 * 1000 / 6000)))


def test_jpeg_draft_decodes_reduced_before_the_pixel_limit(monkeypatch):
    # With a 1 MP limit, a 6 MP image is only acceptable if it is decoded at a
    # reduced scale: proof that draft() runs before the size check and the decode.
    monkeypatch.setattr(intake, "MAX_PIXELS", 1_000_000)
    picture = noise(3000, 2000, seed=1)

    image = read_image(encode(picture, "JPEG", quality=80), max_side=500)
    assert_rgb(image, (500, 333))

    message = bad_image_message(encode(picture, "PNG"), max_side=500)
    assert "3000×2000" in message


def test_fit_within():
    image = Image.new("RGB", (400, 100), RED)
    assert fit_within(image, 400) is image
    smaller = fit_within(image, 100)
    assert smaller is not image
    assert smaller.size == (100, 25)
    assert image.size == (400, 100)
    assert fit_within(Image.new("RGB", (1000, 1)), 10).size == (10, 1)
    with pytest.raises(ValueError):
        fit_within(image, 0)


def test_invalid_max_side_is_a_programming_error(png_bytes):
    with pytest.raises(ValueError) as caught:
        read_image(png_bytes, max_side=0)
    assert not isinstance(caught.value, BadImageError)


# --- too large ---------------------------------------------------------------


def test_decompression_bomb_is_rejected_before_decoding():
    data = png_declaring_size(30000, 30000)
    assert len(data) < 100  # the header alone: nothing to decode
    message = bad_image_message(data)
    assert "too large" in message
    assert "900 megapixels" in message
    assert "64 megapixels" in message


@pytest.mark.parametrize(
    "size", [(9000, 8000), (10000, 10000)], ids=["own-limit", "pillow-warning-range"]
)
def test_oversized_header_names_its_dimensions(size):
    pillow_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may leak out
        message = bad_image_message(png_declaring_size(*size))
    assert f"{size[0]}×{size[1]} pixels" in message
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


def test_oversized_pil_image_and_array_are_rejected(monkeypatch):
    monkeypatch.setattr(intake, "MAX_PIXELS", 100)
    assert "11×10" in bad_image_message(Image.new("RGB", (11, 10)))
    assert "10×11" in bad_image_message(np.zeros((11, 10), dtype=np.uint8))


def test_zero_sized_pil_image_is_rejected():
    assert "no pixels" in bad_image_message(Image.new("RGB", (0, 0)))


# --- not an image ------------------------------------------------------------


def test_truncated_jpeg(tmp_path):
    data = encode(noise(300, 200), "JPEG", quality=90)
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    message = bad_image_message(path)
    assert "incomplete or corrupt" in message
    assert "JPEG" in message


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "TIFF", "BMP"])
def test_truncated_files_of_other_formats(fmt):
    data = encode(noise(300, 200), fmt)
    assert "incomplete or corrupt" in bad_image_message(data[: len(data) // 2])


def test_corrupt_png_data():
    data = bytearray(encode(noise(64, 64), "PNG"))
    data[60:200] = bytes(140)  # wipe the start of the compressed pixels
    assert "incomplete or corrupt" in bad_image_message(bytes(data))


def test_random_bytes_are_not_an_image():
    data = np.random.default_rng(0).bytes(2000)
    assert "not in an image format" in bad_image_message(data)


@pytest.mark.parametrize("src", [b"", io.BytesIO()], ids=["bytes", "file-object"])
def test_empty_input(src):
    assert bad_image_message(src) == "The file is empty (0 bytes)."


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert bad_image_message(path) == "The file is empty (0 bytes)."


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "a PDF document"),
        (b"\n  <!DOCTYPE html>\n<html><body>Not found</body></html>", "an HTML web page"),
        (b"<HTML><HEAD></HEAD></HTML>", "an HTML web page"),
        (zip_bytes(), "a ZIP archive or an Office document"),
        (gzip.compress(b"hello"), "a GZIP-compressed file"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "an MP4/MOV video"),
        ("Grad-CAM notes: les résultats\n".encode(), "plain text"),
    ],
    ids=["pdf", "html", "html-upper", "zip", "gzip", "mp4", "text"],
)
def test_non_images_are_named(data, kind):
    message = bad_image_message(data)
    assert message.startswith(f"This file is not an image (it looks like {kind}).")
    assert "JPEG, PNG, WebP, GIF, BMP or TIFF" in message


def test_html_renamed_to_png(tmp_path):
    path = tmp_path / "cat.png"
    path.write_text("<!doctype html><html><head><title>Cat</title></head></html>")
    assert "HTML web page" in bad_image_message(path)


def test_text_file(tmp_path):
    path = tmp_path / "image.jpg"
    path.write_text("this is not a picture\n")
    assert "plain text" in bad_image_message(path)


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
    ],
)
def test_svg_is_explained(svg):
    assert "SVG vector images are not supported" in bad_image_message(svg)


def test_heic_photo_is_explained():
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    assert "HEIC" in bad_image_message(data)


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere.png"
    message = bad_image_message(missing)
    assert message == f"No such file: {missing}"
    assert bad_image_message(str(missing)) == message


def test_folder_path(tmp_path):
    assert "folder" in bad_image_message(tmp_path)


def test_path_with_nul_byte():
    assert "Could not open" in bad_image_message("bad\x00name.png")


# Pillow may warn about what it skipped (e.g. a truncated TIFF tag); only the outcome matters here.
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"])
def test_damaged_files_never_escape_as_other_errors(fmt):
    # Whatever the damage, the answer is an RGB image or a BadImageError.
    data = encode(noise(48, 32, seed=2), fmt)
    rng = np.random.default_rng(3)
    for trial in range(40):
        damaged = bytearray(data[: rng.integers(1, len(data) + 1)])
        for position in rng.integers(0, len(damaged), size=trial % 5 + 1):
            damaged[position] = rng.integers(0, 256)
        try:
            image = read_image(bytes(damaged))
        except BadImageError as err:
            assert str(err)
        else:
            assert image.mode == "RGB"


# --- model input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((224, 224), (224, 224)),
        ((448, 224), (448, 224)),
        ((1000, 500), (448, 224)),
        ((500, 1000), (224, 448)),
        ((300, 200), (336, 224)),
        ((200, 300), (224, 336)),
        ((10000, 10), (448, 224)),
        ((10, 10000), (224, 448)),
        ((1, 1), (224, 224)),
    ],
)
def test_model_input_size(size, expected):
    assert model_input_size(*size) == expected


def test_model_input_size_custom_sides():
    assert model_input_size(300, 200, short_side=100, max_long_side=1000) == (150, 100)
    assert model_input_size(2, 3, short_side=1, max_long_side=1) == (1, 1)


@pytest.mark.parametrize("args", [(0, 10), (10, -1), (10, 10, 0), (10, 10, 300, 200)])
def test_model_input_size_rejects_nonsense(args):
    with pytest.raises(ValueError):
        model_input_size(*args)


IMAGENET_STD = (0.229, 0.224, 0.225)


def test_to_model_input_shape_dtype_and_layout():
    tensor = to_model_input(Image.new("RGB", (224, 224)), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert tensor.shape == (1, 3, 224, 224)
    assert tensor.dtype == torch.float32
    assert tensor.is_contiguous()
    assert torch.allclose(tensor, torch.full_like(tensor, -1.0))  # black: (0 - 0.5) / 0.5


def test_image_equal_to_mean_normalises_to_zero():
    colour = (124, 116, 104)
    mean = tuple(c / 255 for c in colour)
    tensor = to_model_input(Image.new("RGB", (50, 40), colour), mean=mean, std=IMAGENET_STD)
    assert tensor.abs().max().item() < 1e-5


def test_channels_are_normalised_separately():
    image = Image.new("RGB", (10, 10), (255, 0, 51))
    tensor = to_model_input(image, mean=(0, 0, 0.1), std=(1, 0.5, 0.2))
    channel_values = tensor[0, :, 0, 0].tolist()
    assert channel_values == pytest.approx([1.0, 0.0, 0.5], abs=1e-5)


def test_to_model_input_keeps_aspect_ratio():
    wide = to_model_input(Image.new("RGB", (300, 200)), (0, 0, 0), (1, 1, 1))
    tall = to_model_input(Image.new("RGB", (200, 300)), (0, 0, 0), (1, 1, 1))
    assert wide.shape == (1, 3, 224, 336)
    assert tall.shape == (1, 3, 336, 224)


def test_to_model_input_uses_the_whole_image():
    # A centre crop of this 2:1 image would lose the red and blue ends.
    image = Image.new("RGB", (800, 400), GREEN)
    image.paste(RED, (0, 0, 100, 400))
    image.paste(BLUE, (700, 0, 800, 400))
    tensor = to_model_input(image, (0, 0, 0), (1, 1, 1))
    assert tensor.shape == (1, 3, 224, 448)
    assert tensor[0, :, 112, 5].tolist() == pytest.approx([1, 0, 0], abs=1e-3)
    assert tensor[0, :, 112, 442].tolist() == pytest.approx([0, 0, 1], abs=1e-3)


def test_to_model_input_antialiases_when_shrinking():
    # One-pixel stripes average to grey when shrunk properly; naive sampling keeps black or white.
    stripes = np.zeros((448, 896), dtype=np.uint8)
    stripes[:, ::2] = 255
    tensor = to_model_input(Image.fromarray(stripes).convert("RGB"), (0, 0, 0), (1, 1, 1))
    centre = tensor[0, 0, 100:120, 200:240]
    assert centre.min().item() > 0.4
    assert centre.max().item() < 0.6


def test_to_model_input_converts_non_rgb_images():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    tensor = to_model_input(rgba, (0, 0, 0), (1, 1, 1))
    assert tensor.shape == (1, 3, 224, 224)
    assert torch.allclose(tensor, torch.ones_like(tensor))  # transparent is white, as in read_image


@pytest.mark.parametrize(("mean", "std"), [((0, 0), (1, 1, 1)), ((0, 0, 0), (1, 0, 1))])
def test_to_model_input_rejects_bad_normalisation(mean, std):
    with pytest.raises(ValueError):
        to_model_input(Image.new("RGB", (4, 4)), mean, std)


def test_read_then_model_input_end_to_end(tmp_path):
    path = tmp_path / "upload.webp"
    path.write_bytes(encode(noise(640, 480, seed=4), "WEBP", quality=90))
    tensor = to_model_input(read_image(path), mean=(0.485, 0.456, 0.406), std=IMAGENET_STD)
    assert tensor.shape == (1, 3, 224, 299)  # 640×480 → short side 224, long side 298.67 → 299
    assert torch.isfinite(tensor).all()
