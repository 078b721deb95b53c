"""Files the page hands to Gradio to serve: pictures and documents in Gradio's cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from gradio.utils import get_upload_folder

from core.render import encode_lossless


def png_file(picture: np.ndarray, name: str = "panel") -> str:
    """The picture as a lossless PNG file in Gradio's cache, which serves it as is."""
    return cache_file(encode_lossless(picture, ".png"), f"{name}.png")


def cache_file(data: bytes, filename: str) -> str:
    """The bytes as a file in Gradio's cache, in a folder named by their hash, served as is."""
    folder = Path(get_upload_folder()) / hashlib.blake2b(data, digest_size=16).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_bytes(data)
    return str(path)
