"""Where the page keeps its Explanations between events, and where its models come from.

Explanations live here, on the server, keyed by browser session and by (image digest, model,
top-k, precision), so that a layer, class, colormap, opacity or counterfactual change reuses one without
running the network. Nothing with tensors goes into ``gr.State`` (which Gradio deep-copies).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Callable

from core import Explanation, WeightsUnavailableError, load_model

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


class ExplanationCache:
    """A two-level LRU: at most PER_SESSION entries per session and TOTAL overall."""

    def __init__(self, per_session: int = PER_SESSION, total: int = TOTAL) -> None:
        self.per_session = per_session
        self.total = total
        self._entries: OrderedDict[tuple[str, CacheKey], Explanation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str, key: CacheKey) -> Explanation | None:
        with self._lock:
            explanation = self._entries.get((session, key))
            if explanation is not None:
                self._entries.move_to_end((session, key))
            return explanation

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


class ModelShelf:
    """The page's models: official ImageNet weights where they can be had, untrained otherwise.

    A model whose ImageNet weights are unavailable falls back to random weights once, and the
    reason is kept so the page can say why and how to fix it.
    """

    def __init__(self, weights: str = "imagenet", loader: Callable[..., object] = load_model) -> None:
        self.weights = weights
        self._loader = loader
        self._fallback_reasons: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str):
        with self._lock:
            fallen_back = name in self._fallback_reasons
        if self.weights != "imagenet" or fallen_back:
            return self._loader(name, weights="random" if fallen_back else self.weights)
        try:
            return self._loader(name, weights="imagenet")
        except WeightsUnavailableError as err:
            with self._lock:
                self._fallback_reasons[name] = str(err)
            return self._loader(name, weights="random")

    def fallback_reason(self, name: str) -> str | None:
        with self._lock:
            return self._fallback_reasons.get(name)
