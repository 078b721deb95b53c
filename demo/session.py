"""Where the page keeps its Explanations between events, and where its models come from.

Explanations live here, on the server, keyed by browser session and by (image digest, model,
top-k, precision), so that a layer, class, colormap, opacity or counterfactual change reuses one without
running the network. Nothing with tensors goes into ``gr.State`` (which Gradio deep-copies).
Models come from the shelf (core.shelf), within a memory budget; a cached Explanation holds none.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Callable, Iterator

from core import MODELS, Explanation
from demo.common import PageError

#: Explanations kept per browser session, and for all sessions together (~40 MB each for resnet50).
#: Four per session: the main view and up to three models compared side by side (demo.teaching).
PER_SESSION = 4
TOTAL = 16

CacheKey = tuple[str, str, int, str]  # (image digest, model, top-k, precision)


def image_digest(path: str | os.PathLike) -> str:
    """Identifies an upload by content, so the same picture sent twice shares one Explanation."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(image: str | None, model_name: str, top_k: int, precision: str) -> CacheKey:
    """What names an explanation: the upload's content, the model, the top-k and the precision."""
    if not image:
        raise PageError("NO_IMAGE")
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(MODELS)}")
    try:
        return image_digest(image), model_name, int(top_k), precision
    except OSError as err:
        raise PageError("UNREADABLE_UPLOAD", reason=err.strerror or err) from err


def payload_name(key: CacheKey) -> str:
    """The name of an explanation's payload: pieces with the same name add to what the page holds."""
    return hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()


class ExplanationCache:
    """A two-level LRU: at most PER_SESSION entries per session and TOTAL overall."""

    def __init__(self, per_session: int = PER_SESSION, total: int = TOTAL) -> None:
        self.per_session = per_session
        self.total = total
        self._entries: OrderedDict[tuple[str, CacheKey], Explanation] = OrderedDict()
        self._making: dict[tuple[str, CacheKey], Future] = {}  # explanations being made, for those who ask meanwhile
        self._lock = threading.Lock()

    def get(self, session: str, key: CacheKey) -> Explanation | None:
        with self._lock:
            explanation = self._entries.get((session, key))
            if explanation is not None:
                self._entries.move_to_end((session, key))
            return explanation

    def get_or_make(self, session: str, key: CacheKey, make: Callable[[], Explanation]) -> Explanation:
        """The cached Explanation, or the one ``make()`` gives, made once however many ask at once.

        An event that needs an explanation while another event's pass is making it (the rest of a
        photo's second change event, a class outside the top-k asked early) waits for that pass,
        and fails with its error, rather than running the network again beside it."""
        with self._lock:
            explanation = self._entries.get((session, key))
            if explanation is not None:
                self._entries.move_to_end((session, key))
                return explanation
            making = self._making.get((session, key))
            mine = making is None
            if mine:
                making = self._making[(session, key)] = Future()
        if not mine:
            return making.result()
        try:
            explanation = make()
            self.put(session, key, explanation)
            making.set_result(explanation)
            return explanation
        except BaseException as err:
            making.set_exception(err)
            raise
        finally:
            with self._lock:
                del self._making[(session, key)]

    def put(self, session: str, key: CacheKey, explanation: Explanation) -> None:
        with self._lock:
            self._entries[(session, key)] = explanation
            self._entries.move_to_end((session, key))
            mine = [k for k in self._entries if k[0] == session]
            for stale in mine[: max(0, len(mine) - self.per_session)]:
                del self._entries[stale]
            while len(self._entries) > self.total:
                self._entries.popitem(last=False)

    def drop_session(self, session: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == session]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def sessions(self) -> set[str]:
        with self._lock:
            return {session for session, _ in self._entries}


class Answering:
    """The events being answered now, each named by a tuple (event, session, key, method)."""

    def __init__(self) -> None:
        self._events: set[tuple] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def alone(self, *event: Any) -> Iterator[bool]:
        """Whether no identical event is being answered. The image control fires its change
        event twice when a photo replaces another: the second first view and its rest would only
        repeat the first's work and send the page what it holds."""
        with self._lock:
            alone = event not in self._events
            self._events.add(event)
        try:
            yield alone
        finally:
            if alone:
                with self._lock:
                    self._events.discard(event)
