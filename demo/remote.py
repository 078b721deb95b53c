"""The page's side of the explainer on a Ray cluster (cluster.deployment), over Serve's HTTP proxy.

The page reads and checks the picture itself, so a bad upload never reaches the cluster, and
sends its RGB bytes. A request cut short (a replica that died, a proxy that answered 5xx) is sent
again, up to ``attempts`` times; Serve routes it to a live replica, and the pieces the page already
has are skipped, so none arrives twice. When the cluster cannot be reached at all the call
raises :class:`ClusterUnavailable`, which the page turns into words (or into the embedded
explainer, when it is configured to fall back).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterator

import httpx
import numpy as np
from PIL import Image

from core import read_image
from core.methods import PERTURBATION_METHODS
from demo.common import DISPLAY_SIDE, PANEL_SIDE, PageError
from demo.session import CacheKey, payload_name

#: Where the page finds the explainer: Serve's HTTP address and the application's route prefix.
CLUSTER_URL_ENV = "GRADCAM_RAY_URL"
#: "1" to explain in the page's own process when the cluster cannot be reached.
FALLBACK_ENV = "GRADCAM_RAY_FALLBACK"


class ClusterUnavailable(RuntimeError):
    """The cluster did not answer (refused, timed out, or failed every attempt)."""


class ClusterExplainer:
    """Calls the cluster's two routes (first, classes) and retries what a dying replica cut short."""

    def __init__(self, url: str, *, attempts: int = 4, backoff_s: float = 0.5, timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.retries = 0  # requests sent again after a failure, for the figures and the tests
        self._retries_lock = threading.Lock()  # many pages' calls retry at once
        # Each page whose rest of the top-k is still on its way holds a connection: a classroom's worth.
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0), limits=limits)

    def first(self, picture: Image.Image, model: str, top_k: int, precision: str, method: str, layer: int, side: int, name: str) -> Iterator[dict[str, Any]]:
        """The first piece, then the rest of the top-k class by class, as the cluster sends them."""
        query = _query(picture, model=model, top_k=top_k, precision=precision, method=method, layer=layer, side=side, name=name)
        body = np.asarray(picture, dtype=np.uint8).tobytes()
        delivered = 0
        for attempt in range(self.attempts):
            try:
                with self._client.stream("POST", f"{self.url}/first", params=query, content=body) as response:
                    _raise_for_refusal(response)
                    for n, line in enumerate(response.iter_lines()):
                        piece = json.loads(line)
                        if piece.get("end"):
                            return
                        if n >= delivered:  # a repeated request sends again what the page has
                            delivered += 1
                            yield piece
                raise httpx.RemoteProtocolError("the answer ended before its end line")
            except (httpx.TransportError, _RetryableStatus) as err:
                self._pause_or_give_up(attempt, err)

    def classes(self, picture: Image.Image, model: str, top_k: int, precision: str, method: str, classes: list[int], side: int, name: str) -> dict[str, Any]:
        """One piece with the maps of ``classes``."""
        query = _query(picture, model=model, top_k=top_k, precision=precision, method=method, side=side, name=name, classes=",".join(map(str, classes)))
        body = np.asarray(picture, dtype=np.uint8).tobytes()
        for attempt in range(self.attempts):
            try:
                response = self._client.post(f"{self.url}/classes", params=query, content=body)
                _raise_for_refusal(response)
                return response.json()
            except (httpx.TransportError, _RetryableStatus) as err:
                self._pause_or_give_up(attempt, err)
        raise AssertionError("unreachable: the last attempt raises")

    def _pause_or_give_up(self, attempt: int, err: Exception) -> None:
        if attempt + 1 >= self.attempts:
            raise ClusterUnavailable(f"the explainer cluster at {self.url} did not answer ({_short(err)})") from err
        with self._retries_lock:
            self.retries += 1
        time.sleep(self.backoff_s * (attempt + 1))

    def close(self) -> None:
        self._client.close()


class _RetryableStatus(Exception):
    """A 5xx from the proxy: the replica failed or is gone; another may answer."""


def _query(picture: Image.Image, **fields: Any) -> dict[str, str]:
    width, height = picture.size
    return {"width": str(width), "height": str(height), **{k: str(v) for k, v in fields.items()}}


def _raise_for_refusal(response: httpx.Response) -> None:
    """A 4xx is the request's fault and is not retried: its reason becomes the page's error."""
    if response.status_code >= 500:
        raise _RetryableStatus(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        response.read()
        try:
            reason = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            reason = response.text[:200]
        raise ValueError(reason)


def _short(err: BaseException) -> str:
    return str(err).splitlines()[0][:160] if str(err) else type(err).__name__


class ClusterRoute:
    """The Explore tab's network calls when a cluster explains.

    The first view keeps its stream open for the rest of the top-k, which the session's next
    on_rest reads; another method or a class outside the top-k is one more call. A call returns
    None when the cluster is gone and the page falls back to explaining in its own process;
    without the fallback, the page says that the cluster did not answer.
    """

    def __init__(self, explainer: ClusterExplainer, *, fallback: bool = False) -> None:
        self.explainer = explainer
        self.fallback = fallback
        self._sessions: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def first(self, session: str, image: str, key: CacheKey, method: str, layer: int) -> dict[str, Any] | None:
        picture = read_image(image, max_side=DISPLAY_SIDE)  # a bad upload is refused here, before the cluster
        name = payload_name(key)
        stream = self.explainer.first(picture, key[1], key[2], key[3], method, layer, PANEL_SIDE, name)
        piece = self._unless_gone(lambda: next(stream))
        if piece is None:
            return None
        if method in PERTURBATION_METHODS:  # no rest follows: read the end line, let the connection go
            self._unless_gone(lambda: list(stream))
            stream = None
        with self._lock:
            previous = self._sessions.get(session)
            self._sessions[session] = _Held(name, [int(p["index"]) for p in piece["predictions"]], stream)
        if previous is not None and previous.stream is not None:
            previous.stream.close()  # its upload was replaced before its rest was read
        return piece

    def rest(self, session: str, key: CacheKey) -> Generator[dict[str, Any], None, bool] | None:
        """The rest of the first view's top-k as the cluster stores it, or None if this session
        holds no open stream of ``key``. The generator returns False if the cluster went away
        on the way and the page falls back (it then explains the rest itself)."""
        with self._lock:
            held = self._sessions.get(session)
            if held is None or held.name != payload_name(key) or held.stream is None:
                return None
            stream, held.stream = held.stream, None
        return self._drain(stream)

    def _drain(self, stream: Iterator[dict[str, Any]]) -> Generator[dict[str, Any], None, bool]:
        while True:
            piece = self._unless_gone(lambda: next(stream, _END))
            if piece is None:
                return False
            if piece is _END:
                return True
            yield piece

    def top_classes(self, session: str, key: CacheKey) -> list[int] | None:
        """The top-k of the session's first view of ``key`` if the cluster made it, else None."""
        with self._lock:
            held = self._sessions.get(session)
        return held.top_classes if held is not None and held.name == payload_name(key) else None

    def maps(self, image: str, key: CacheKey, method: str, classes: list[int]) -> dict[str, Any] | None:
        """One piece with the maps of ``classes`` under ``method``."""
        picture = read_image(image, max_side=DISPLAY_SIDE)
        return self._unless_gone(lambda: self.explainer.classes(picture, key[1], key[2], key[3], method, classes, PANEL_SIDE, payload_name(key)))

    def method_maps(self, session: str, image: str, key: CacheKey, method: str, class_idx: int | None, *, others: bool = True) -> dict[str, Any] | None:
        """One piece with the maps of ``class_idx`` (the top class if None) under ``method`` and,
        with ``others`` and a gradient method, of the rest of the top-k (the completion that
        brings one top-k class brings them all); None unless the cluster made the session's
        first view of ``key`` (or it is gone and the page falls back)."""
        tops = self.top_classes(session, key)
        if tops is None:
            return None
        selected = tops[0] if class_idx is None else int(class_idx)
        rest = [c for c in tops if c != selected] if others and method not in PERTURBATION_METHODS else []
        return self.maps(image, key, method, [selected, *rest])

    def drop_session(self, session: str) -> None:
        with self._lock:
            held = self._sessions.pop(session, None)
        if held is not None and held.stream is not None:
            held.stream.close()

    def _unless_gone(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ClusterUnavailable as err:
            if self.fallback:
                return None
            raise PageError("CLUSTER_UNREACHABLE", url=self.explainer.url) from err


_END: dict[str, Any] = {}  # the stream's end, told apart from a piece by identity


@dataclass
class _Held:
    """A session's last first view on the cluster: its name, its top-k, and the open stream of
    the rest until on_rest takes it."""

    name: str
    top_classes: list[int]
    stream: Generator[dict[str, Any], None, None] | None


def cluster_route(environ: dict[str, str] | os._Environ = os.environ) -> ClusterRoute | None:
    """The cluster that $GRADCAM_RAY_URL names (None when unset), falling back to explaining in
    the page's process if $GRADCAM_RAY_FALLBACK is 1."""
    url = environ.get(CLUSTER_URL_ENV, "").strip()
    if not url:
        return None
    return ClusterRoute(ClusterExplainer(url), fallback=environ.get(FALLBACK_ENV, "").strip().lower() in ("1", "true", "yes"))
