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
import time
from typing import Any, Iterator

import httpx
import numpy as np
from PIL import Image

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
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0))

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


def cluster_from_environment(environ: dict[str, str] | os._Environ = os.environ) -> tuple[str | None, bool]:
    """($GRADCAM_RAY_URL or None, whether $GRADCAM_RAY_FALLBACK asks for the embedded fallback)."""
    url = environ.get(CLUSTER_URL_ENV, "").strip() or None
    return url, environ.get(FALLBACK_ENV, "").strip().lower() in ("1", "true", "yes")
