"""The explainer on Ray Serve: each replica runs :class:`core.service.Explainer` behind Serve's
HTTP proxy.

Two routes under the application's prefix, both taking the picture as its raw RGB bytes (the
page has already read and checked it) and the rest as query parameters:

* ``POST first``: the first view, then the top-k's pieces (each class's guided map, then its maps), as JSON lines; a last line
  ``{"end": true}`` tells a complete answer from one cut short by a replica that died;
* ``POST classes``: one piece with the maps of ``classes`` (comma-separated).

A request that cannot be served as asked (an unknown model or method, a picture whose bytes do
not match its size) is answered 400 with ``{"error": ...}``.

Why HTTP and not a DeploymentHandle in the page: a process holding a handle is a Ray driver,
and Ray ends a driver whose cluster has been gone for 60 s. The page must outlive its cluster.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np
from ray import serve
from ray.serve import Application
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from core.service import Explainer

END = {"end": True}


def picture_of(body: bytes, width: int, height: int) -> np.ndarray:
    if width < 1 or height < 1 or len(body) != width * height * 3:
        raise ValueError(f"the picture's {len(body)} bytes are not {width}×{height} RGB")
    return np.frombuffer(body, dtype=np.uint8).reshape(height, width, 3)


def request_arguments(query: Any, body: bytes) -> dict[str, Any]:
    """The Explainer's arguments common to both routes, from the query and the body."""
    return {
        "picture": picture_of(body, int(query["width"]), int(query["height"])),
        "model": query["model"],
        "top_k": int(query["top_k"]),
        "precision": query.get("precision", "float32"),
        "method": query.get("method", "gradcam"),
        "side": int(query["side"]),
        "name": query["name"],
    }


def json_lines(pieces: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for piece in pieces:
        yield json.dumps(piece).encode() + b"\n"
    yield json.dumps(END).encode() + b"\n"


# Requests enter the replica up to max_ongoing_requests, where its scheduler runs every waiting
# first view before any completion; those beyond wait in Serve's queue, first come first served.
@serve.deployment(name="Explainer", ray_actor_options={"num_cpus": 1}, max_ongoing_requests=16)
class ExplainerDeployment:
    def __init__(self, weights: str = "imagenet", budget_mb: float | None = None, preload: list[str] | tuple[str, ...] = ()) -> None:
        self.explainer = Explainer(weights, budget_mb, tuple(preload))

    async def __call__(self, request: Request) -> Response:
        route = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        try:
            arguments = request_arguments(request.query_params, await request.body())
            if route == "first":
                pieces = self.explainer.first(layer=int(request.query_params.get("layer", 4)), **arguments)
                first = await run_in_threadpool(next, pieces)  # errors in the pass become a 400/500 here, not a cut stream
                return StreamingResponse(json_lines(_chain(first, pieces)), media_type="application/x-ndjson")
            if route == "classes":
                classes = [int(c) for c in request.query_params["classes"].split(",")]
                return JSONResponse(await run_in_threadpool(self.explainer.classes, classes=classes, **arguments))
        except (KeyError, ValueError) as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        return JSONResponse({"error": f"no route {route!r}: use first or classes"}, status_code=404)


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def build(args: dict[str, Any]) -> Application:
    """The application for ``serve run cluster.deployment:build weights=random`` or a config
    file's ``import_path``: ``args`` may set weights, budget_mb and preload (model names)."""
    preload = args.get("preload", ())
    if isinstance(preload, str):
        preload = [name for name in preload.split(",") if name]
    budget = args.get("budget_mb")
    return ExplainerDeployment.bind(args.get("weights", "imagenet"), None if budget is None else float(budget), list(preload))
