"""Files the page hands to Gradio to serve: pictures and documents in Gradio's cache.

Each file lives in a folder named by the hash of its bytes, so clients who ask for the same
picture (thirty students calling /explain on the same example, or downloading its full-resolution
panels) are handed the very same paths, and the server may be sending a file to one of them while
another's request caches it again. So a file, once at its path, is never rewritten in place: a
new one is written under a temporary name beside it and renamed over it, and an identical
complete file is left alone. A reader sees the whole file or none, never part of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
from gradio.utils import get_upload_folder

from core.render import encode_lossless


def png_file(picture: np.ndarray, name: str = "panel") -> str:
    """The picture as a lossless PNG file in Gradio's cache, which serves it as is."""
    return cache_file(encode_lossless(picture, ".png"), f"{name}.png")


def cache_file(data: bytes, filename: str) -> str:
    """The bytes as a file in Gradio's cache, in a folder named by their hash; its path.

    Same path, same bytes: a complete file already there is kept, and only its age is renewed.
    """
    path = cache_path(data, filename)
    if not _renewed(path, len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_whole(path, data)
    return str(path)


def cache_path(data: bytes, filename: str) -> Path:
    """Where cache_file keeps these bytes under this name."""
    return Path(get_upload_folder()) / hashlib.blake2b(data, digest_size=16).hexdigest() / filename


def _renewed(path: Path, size: int) -> bool:
    """Whether a complete copy is at ``path``; if so, its age starts again now.

    Gradio 6.31's delete_cache (gradio.route_utils.delete_files_created_by_app) removes each file
    handed out through a component once its st_ctime is more than `age` seconds old, checking
    every `frequency` seconds. A re-used file keeps the ctime of its first writing, so a popular
    example's panel could be removed between being handed to a student and being fetched (a
    broken image). os.utime sets the ctime to now as well. A fetch already under way is safe:
    Starlette's FileResponse streams from the file it opened, which outlives its unlinking.
    """
    try:
        # Only whole files are renamed into place under the hash of their bytes, so the size
        # alone tells; it catches a part left by a version that wrote in place.
        if path.stat().st_size != size:
            return False
        os.utime(path)
    except FileNotFoundError:  # not written yet, or aged out between the two calls
        return False
    return True


def _write_whole(path: Path, data: bytes) -> None:
    """Writes ``data`` beside ``path`` and renames it into place: readers see all of it or none.

    os.replace is atomic within a folder, and a reader that has the old file open keeps reading
    the old file (the same bytes: the name is their hash). Concurrent writers each rename their
    own complete copy, the last one wins. No fsync: readers are this process and its clients,
    not a machine that restarts; a crash leaves at worst a temporary file, never part of a file
    at the path.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o644)  # mkstemp makes it private (0600); cached files are 0644
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
