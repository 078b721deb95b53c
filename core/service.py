"""The explainer as a stateless service: (picture, model, top-k, precision, method) → the pieces
of payload (:mod:`core.payload`) that the page draws.

The first piece is what a first view needs (layer4 of the top-k where it has a closed form, the
original, the predictions, and :func:`about` the explanation). The top-k's guided maps, and
their classes at every stage, follow as the completion stores them (:func:`stored_pieces`).

The embedded page (demo.explore) builds its pieces with :func:`first_piece` and
:func:`stored_pieces` around its own scheduler; a Ray Serve replica (cluster.deployment) runs
:class:`Explainer`, which calls the same two functions. So the payload does not depend on where
it was computed, and any replica can answer any request: what a replica remembers between
requests (:attr:`Explainer.recent`) only saves it a pass.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, ContextManager, Iterator

import numpy as np

from core.engine import Explanation, explain
from core.methods import METHODS, PERTURBATION_METHODS
from core.payload import classes_piece, first_view, guided_piece, method_classes
from core.scheduler import NetworkScheduler, network_concurrency, wait_on_completion
from core.shelf import ModelShelf
from core.views import display_size

#: Explanations a replica keeps for follow-up requests (another method, a class outside the top-k).
RECENT = 4


def about(explanation: Explanation, reason: str | None = None) -> dict[str, Any]:
    """What the page's status line and banner say about an explanation besides its maps;
    ``reason`` is why its weights are untrained, when they fell back (core.shelf)."""
    info = explanation.info
    return {"weights": info.weights, "trained": info.trained, "relu": explanation.has_relu, "precision": explanation.precision, "reason": reason}


def first_piece(explanation: Explanation, name: str, method: str, side: int, reason: str | None = None) -> dict[str, Any]:
    """The first view's payload: the method's maps of the top class (of the top-k where the method
    is cheap) as far as the explanation holds them, and the picture, predictions and :func:`about`."""
    classes = method_classes(explanation, method, explanation.top_classes[0])
    piece = first_view(explanation, name, classes, method, display_size(explanation, side))
    piece["about"] = about(explanation, reason)
    return piece


def class_piece(explanation: Explanation, name: str, class_idx: int, method: str, side: int) -> dict[str, Any]:
    """One more class's maps at every stage, and its guided map if stored, for a page that holds
    the first piece; the class's stages must be stored (:meth:`Explanation.map_ready`)."""
    return classes_piece(explanation, name, [class_idx], method, display_size(explanation, side))


def stored_pieces(explanation: Explanation, name: str, method: str, side: int, wait: Callable[[Callable[[], bool]], None]) -> Iterator[dict[str, Any]]:
    """Two pieces per top-k class, the top class first, as the completion stores them: its guided
    map (with layer4's closed form, the five panels), then its maps at every stage (the strip),
    whatever is stored already, so that the stream's shape does not depend on timing.
    ``wait(condition)`` returns once condition() holds."""
    size = display_size(explanation, side)
    for c in explanation.top_classes:
        wait(lambda: explanation.stored(c, guided=True))
        yield guided_piece(explanation, name, [c], method, size)
        wait(lambda: explanation.map_ready(c, 1))
        yield classes_piece(explanation, name, [c], method, size, guided=False)


def completed_pieces(
    explanation: Explanation, name: str, method: str, side: int, gate: Callable[[], ContextManager[None]] = contextlib.nullcontext
) -> Iterator[dict[str, Any]]:
    """:func:`stored_pieces` of one completion pass, which runs inside ``gate()``."""

    def complete() -> None:
        with gate():
            explanation.complete()

    with ThreadPoolExecutor(1, thread_name_prefix="completion") as pool:
        completion = pool.submit(complete)
        yield from stored_pieces(explanation, name, method, side, lambda condition: wait_on_completion(completion, explanation, condition))


def prepare(explanation: Explanation, classes: list[int]) -> None:
    """Stores what drawing ``classes`` at every stage needs: the top-k in one completion pass,
    any other class in one pass of its own."""
    if any(c in explanation.top_classes and not explanation.drawable(c, 1) for c in classes):
        explanation.complete()
    for c in classes:
        if not explanation.drawable(c, 1):
            explanation.gradients(c, 1)
            explanation.guided_backprop(c)


class Explainer:
    """What one replica runs: models from its own shelf (lazily loaded, least recently used
    evicted within a memory budget), explanations of the last few requests, and the service's
    two calls. Thread-safe: a replica answers several requests at once, and its scheduler runs
    every waiting first view before any completion, as the page's does."""

    def __init__(self, weights: str = "imagenet", budget_mb: float | None = None, preload: tuple[str, ...] = ()) -> None:
        self.shelf = ModelShelf(weights, budget_mb=budget_mb)
        self.scheduler = NetworkScheduler(network_concurrency())
        self.recent: OrderedDict[str, Explanation] = OrderedDict()
        self._lock = threading.Lock()
        for model_name in preload:
            self.shelf.get(model_name)

    def first(self, picture: np.ndarray, model: str, top_k: int, precision: str, method: str, layer: int, side: int, name: str) -> Iterator[dict[str, Any]]:
        """The first piece, then (for the gradient methods) the top-k's pieces (:func:`stored_pieces`)."""
        _check_method(method)
        # As the embedded page's first view: the top class's guided map follows with the rest.
        explanation, release = self._explanation(picture, model, top_k, precision, name, top_class_stages=layer != 4, top_class_guided=False)
        try:
            reason = self.shelf.fallback_reason(model)
            if method in PERTURBATION_METHODS:
                with self.scheduler.first_view():
                    prepare(explanation, [explanation.top_classes[0]])
                yield first_piece(explanation, name, method, side, reason)
                return
            yield first_piece(explanation, name, method, side, reason)
            yield from completed_pieces(explanation, name, method, side, self.scheduler.background)
        finally:
            release()

    def classes(self, picture: np.ndarray, model: str, top_k: int, precision: str, method: str, classes: list[int], side: int, name: str) -> dict[str, Any]:
        """The maps of ``classes`` (any of the model's classes) under ``method``, in one piece."""
        _check_method(method)
        explanation, release = self._explanation(picture, model, top_k, precision, name)
        try:
            with self.scheduler.first_view():
                prepare(explanation, classes)
            size = display_size(explanation, side)
            return classes_piece(explanation, name, classes, method, size)
        finally:
            release()

    def _explanation(self, picture: np.ndarray, model: str, top_k: int, precision: str, name: str, *, top_class_stages: bool = False, top_class_guided: bool = True):
        """The explanation named ``name`` with its model held, and the function that lets it go."""
        with self._lock:
            found = self.recent.get(name)
            if found is not None:
                self.recent.move_to_end(name)
        if found is not None:
            return found, self.shelf.hold(found)
        with self.shelf.lease(model) as network, self.scheduler.first_view():
            explanation = explain(
                network, picture, top_k=top_k, lazy=True, precision=precision, top_class_stages=top_class_stages, top_class_guided=top_class_guided
            )
            release = self.shelf.hold(explanation)
        with self._lock:
            self.recent[name] = explanation
            while len(self.recent) > RECENT:
                self.recent.popitem(last=False)
        return explanation, release


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
