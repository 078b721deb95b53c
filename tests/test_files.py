"""Files in Gradio's cache: a reader never sees part of one, and re-use renews its age.

Thirty students who click the same example are handed the same content-addressed paths, so the
server sends a file to one of them while another's request caches the same bytes again.
"""

from __future__ import annotations

import builtins
import io
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from demo.files import cache_file, cache_path

#: Writers racing to cache the same new bytes, and rounds of the race.
WRITERS = 8
ROUNDS = 20


#: The size of the panel whose download broke in issue 18.
PANEL_BYTES = 334_273


def _panel_bytes(seed: int) -> bytes:
    """Bytes the size of a full-resolution panel, different for every seed."""
    return np.random.default_rng(seed).bytes(PANEL_BYTES)


@pytest.fixture(autouse=True)
def _own_cache_folder(monkeypatch, tmp_path):
    """Gradio's cache folder is shared with the other tests: these write into their own."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))


@pytest.fixture
def reads_when_a_writer_opens(monkeypatch):
    """Runs ``read`` whenever a file is opened for writing, before anything is written to it.

    Deterministic stand-in for a download under way while another request caches the same
    file: Path.write_bytes, os.fdopen and open() all reach the file through io.open.
    """
    hooks: list = []
    real_open = io.open

    def opening(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        if any(flag in mode for flag in "wax+"):
            for hook in hooks:
                hook()
        return opened

    monkeypatch.setattr(io, "open", opening)
    monkeypatch.setattr(builtins, "open", opening)
    return hooks.append


def test_a_reader_halfway_through_a_panel_gets_every_byte_when_it_is_cached_again(reads_when_a_writer_opens):
    data = _panel_bytes(seed=1)
    path = cache_file(data, "panel.png")
    rest: list[bytes] = []
    with open(path, "rb") as reader:
        first = reader.read(len(data) // 2)
        reads_when_a_writer_opens(lambda: rest.append(reader.read()))
        assert cache_file(data, "panel.png") == path  # a second student, the same panel
        if not rest:  # nothing reopened the file: the reader goes on after the call
            rest.append(reader.read())
    got = first + rest[0]
    assert len(got) == len(data), f"the reader got {len(got)} of {len(data)} bytes"
    assert got == data


def test_concurrent_writers_of_the_same_bytes_never_expose_a_partial_file():
    """Writers of new bytes race from threads; whoever looks at the path sees none or all of it."""
    partial: list[str] = []

    def look(path: Path, data: bytes) -> None:
        try:
            seen = path.read_bytes()
        except FileNotFoundError:
            return
        if seen != data:
            partial.append(f"{len(seen)} of {len(data)} bytes")

    for round_ in range(ROUNDS):
        data = _panel_bytes(seed=1000 + round_)  # new bytes: every writer finds no file and writes
        path = cache_path(data, "panel.png")
        start = threading.Barrier(WRITERS + 1)
        stop = threading.Event()

        def write() -> None:
            start.wait()
            assert cache_file(data, "panel.png") == str(path)
            look(path, data)  # what this student's download would now read

        def watch() -> None:
            start.wait()
            while not stop.is_set():
                look(path, data)

        threads = [threading.Thread(target=write) for _ in range(WRITERS)]
        watcher = threading.Thread(target=watch)
        for thread in [*threads, watcher]:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        watcher.join()
        assert path.read_bytes() == data
        assert [p.name for p in path.parent.iterdir()] == ["panel.png"], "a temporary file was left behind"
    assert not partial, f"partial files seen: {partial[:5]} ({len(partial)} in all)"


def test_a_reused_file_ages_from_its_last_use_in_gradios_delete_cache(monkeypatch):
    """Gradio's age-out counts from the file's ctime: re-use must renew it, or a popular panel
    handed to the 30th student could be deleted before that student fetches it."""
    from gradio import route_utils

    age_s = 3600
    forgotten = Path(cache_file(_panel_bytes(seed=2), "panel.png"))  # used once, never again
    data = _panel_bytes(seed=3)
    popular = Path(cache_file(data, "panel.png"))
    first_used = popular.stat().st_ctime
    time.sleep(0.05)  # more than the coarse kernel clock behind ctime
    assert cache_file(data, "panel.png") == str(popular)
    last_used = popular.stat().st_ctime
    assert last_used > first_used, "re-use left the file's age as it was"

    # The cleaner runs an hour after the first use, just before an hour after the last.
    now = datetime.fromtimestamp(first_used + age_s + (last_used - first_used) / 2)
    monkeypatch.setattr(route_utils, "datetime", SimpleNamespace(now=lambda: now, fromtimestamp=datetime.fromtimestamp))
    blocks = SimpleNamespace(blocks={}, temp_file_sets=[{str(forgotten), str(popular)}])
    route_utils.delete_files_created_by_app(blocks, age_s)
    assert not forgotten.exists(), "the cleaner did not run as this test expects"
    assert popular.exists(), "a file re-used within the hour was aged out"
    assert os.path.getsize(popular) == len(data)
