"""The Explore tab: explain once on the server, then the page draws every view itself.

A new image, model, top-k, precision or method goes to the server, which answers with a payload
(core.payload) that the viewer (demo/viewer.js) draws. Layer, class, opacity, colormap and the
counterfactual are then drawn in the page with no request. The rest of the top-k follows in a
second event as the background completion stores it, class by class. The full-resolution
download, the method comparison and the /explain endpoint stay server-rendered (demo/pictures.py),
as do the teaching tools (demo/teaching.py); the words beside the maps are demo/status.py's.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, ContextManager, Iterator

import gradio as gr

from core import METHODS, PRECISIONS, Explanation, explain, read_image
from core.methods import PERTURBATION_METHODS
from core.payload import classes_piece, method_classes
from core.service import first_piece, stored_pieces
from core.shelf import ModelShelf
from core.views import display_size
from demo.common import DEFAULT_PRECISION, DISPLAY_SIDE, NETWORK_CONCURRENCY, PANEL_SIDE, session_of, slot_waiting, user_errors
from demo.language import words_for
from core.scheduler import Completer, NetworkScheduler
from demo.session import Answering, CacheKey, ExplanationCache, cache_key, payload_name
from demo.remote import ClusterRoute
from demo.status import Summary, banner, class_choices, predictions, shelf_banner, status_line

try:  # On a ZeroGPU Space, spaces.GPU lends the decorated call a GPU; elsewhere it is absent.
    import spaces

    _on_gpu: Callable[[Callable], Callable] = spaces.GPU
except ImportError:

    def _on_gpu(fn: Callable) -> Callable:
        return fn


@_on_gpu
def _explain_on_device(model, picture, top_k: int, precision: str, top_class_stages: bool, top_class_guided: bool) -> Explanation:
    return explain(model, picture, top_k=top_k, lazy=True, precision=precision, top_class_stages=top_class_stages, top_class_guided=top_class_guided)


class Explorer:
    """The Explore tab's event handlers and the server-side state that every tool shares: the
    models (shelf), the per-session explanations (cache) and the network passes (scheduler)."""

    def __init__(self, weights: str = "imagenet", cluster: ClusterRoute | None = None) -> None:
        self.shelf = ModelShelf(weights)
        self.cluster = cluster  # where first views and their maps are computed, if not here
        self.cache = ExplanationCache()
        self.scheduler = NetworkScheduler(NETWORK_CONCURRENCY)
        self.completer = Completer(self.scheduler)
        self._precisions: dict[str, str] = {}  # per session, when it differs from DEFAULT_PRECISION
        self.answering = Answering()

    def precision(self, session: str) -> str:
        return self._precisions.get(session, DEFAULT_PRECISION)

    def on_precision(self, precision: str, request: gr.Request = None) -> None:
        """The session's maps from now on; the chained new-input event then redraws the page."""
        if precision not in PRECISIONS:
            raise gr.Error(words_for(request).INVALID_REQUEST.format(reason=f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}"))
        self._precisions[session_of(request)] = precision

    # ----- getting an Explanation -------------------------------------------------------

    def key(self, image: str | None, model_name: str, top_k: int, session: str) -> CacheKey:
        return cache_key(image, model_name, top_k, self.precision(session))

    def explanation(
        self, image: str | None, model_name: str, top_k: int, session: str, progress: gr.Progress | None = None, *, layer: int = 4
    ) -> Explanation:
        """The session's Explanation of the upload, from the cache or from one network pass. A first
        view at a ``layer`` other than 4 takes the top class at every stage in that pass."""
        return self._explanation(image, self.key(image, model_name, top_k, session), session, progress, layer)

    def _explanation(
        self, image: str, key: CacheKey, session: str, progress: gr.Progress | None = None, layer: int = 4, guided: bool = True
    ) -> Explanation:
        return self.cache.get_or_make(session, key, lambda: self._explain(image, key, progress, layer, guided))

    def _explain(self, image: str, key: CacheKey, progress: gr.Progress | None, layer: int, guided: bool) -> Explanation:
        """One network pass (with the top class's guided map unless ``guided`` is False), and the
        background completion of the rest of the top-k submitted."""
        model_name = key[1]
        if progress is not None:
            progress(0.1, desc=f"Loading {model_name}…")
        # max_side lets a big JPEG decode at 1/2, 1/4 or 1/8 scale: a 4032×3024 photo in ~35 ms, not ~190.
        picture = read_image(image, max_side=DISPLAY_SIDE)
        with self.shelf.lease(model_name, slot_waiting(progress)) as model:
            if progress is not None:
                progress(0.5, desc="Running the network…")
            with self.scheduler.first_view():
                explanation = _explain_on_device(model, picture, key[2], key[3], int(layer) != 4, guided)
            release = self.shelf.hold(explanation)
        # It holds its model until its background completion has the whole top-k, then only its maps.
        self.completer.submit(explanation).add_done_callback(lambda _: release())
        if not guided:  # the page waits for the top class's guided map: not behind another page's completion
            self.completer.lead(explanation)
        return explanation

    @contextlib.contextmanager
    def network(self, explanation: Explanation, *, background: bool = False) -> Iterator[None]:
        """For a pass on an Explanation after its completion: its model through the shelf's queue,
        then a place at the scheduler's gate, in that order, so that no request waits for memory
        while it holds a place that the passes of the models in use need to finish."""
        with self.shelf.holding(explanation), self.scheduler.background() if background else self.scheduler.first_view():
            yield

    def ready(self, explanation: Explanation, class_idx: int, layer: int) -> Explanation:
        """Makes sure a view of (class, layer) runs no pass of its own outside the scheduler.

        A top class whose guided map the first pass left out: the top class alone (``lead()``) at
        first-view priority, unless the completion, which starts with it, is running. Another
        top-k class: the whole top-k, taken over at first-view priority if the completion has not
        started, else waited for until it has stored the class. A class outside the top-k: one
        pass of its own, at first-view priority.
        """
        if explanation.drawable(class_idx, layer):
            return explanation
        if class_idx == explanation.top_classes[0] and not explanation.stored(class_idx, guided=True) and not self.completer.started(explanation):
            with self.scheduler.first_view():
                return explanation.lead()  # the top class alone, not the whole top-k
        if class_idx in explanation.top_classes:
            self.completer.now(explanation, until=lambda: explanation.drawable(class_idx, layer))
        else:
            self.completer.settle(explanation)  # a running completion holds the Explanation's lock
            with self.network(explanation):
                explanation.gradients(class_idx, 1)  # one pass brings its stage and guided gradients
                explanation.guided_backprop(class_idx)
        return explanation

    # ----- what the page draws ----------------------------------------------------------

    def payload(self, explanation: Explanation, key: tuple, classes: list[int], method: str) -> dict[str, Any]:
        """The maps of ``classes`` for the page to draw, after the passes they need."""
        for c in classes:
            self.ready(explanation, c, 1)
        with self._perturbation_gate(explanation, method):
            return classes_piece(explanation, payload_name(key), classes, method, display_size(explanation, PANEL_SIDE))

    def first_payload(self, image: str, key: CacheKey, method: str, layer: int, session: str, progress: gr.Progress | None) -> tuple[dict[str, Any], bool]:
        """The first view's piece (core.service.first_piece) of the upload named ``key``
        (:meth:`key`), from the cluster or from here, and whether it was explained here because
        the cluster did not answer."""
        if self.cluster is not None:
            piece = self.cluster.first(session, image, key, method, int(layer))
            if piece is not None:
                return piece, False
        explanation = self._explanation(image, key, session, progress, layer, guided=False)  # guided maps follow (on_rest)
        if method in PERTURBATION_METHODS:
            self.ready(explanation, explanation.top_classes[0], 1)
        with self._perturbation_gate(explanation, method):
            piece = first_piece(explanation, payload_name(key), method, PANEL_SIDE, self.shelf.fallback_reason(key[1]))
        return piece, self.cluster is not None

    def _perturbation_gate(self, explanation: Explanation, method: str) -> ContextManager[None]:
        """Score-CAM and Ablation-CAM run batches through the network: they wait for a quiet moment."""
        return self.network(explanation, background=True) if method in PERTURBATION_METHODS else contextlib.nullcontext()

    # ----- events -----------------------------------------------------------------------

    @user_errors
    def on_new_input(self, image, model_name, top_k, method="gradcam", layer=4, request: gr.Request = None, progress=gr.Progress()) -> list:
        """A new image, model, top-k or precision: one network pass, and what it gives the page to
        draw: the top class at the slider's layer, and layer4 of the whole top-k where it has a
        closed form. The background completion brings the rest, guided maps included (on_rest)."""
        words = words_for(request)
        if not image:
            return [None, gr.update(value=None), gr.update(choices=[], value=None), None, "", shelf_banner(self.shelf, model_name, words)]
        started = time.perf_counter()
        session = session_of(request)
        key = self.key(image, model_name, top_k, session)  # hashes the upload: once per event
        with self.answering.alone("first view", session, key, method) as alone:
            if not alone:
                return [gr.skip()] * 6
            payload, fell_back = self.first_payload(image, key, method, layer, session, progress)
        payload["model"] = model_name
        payload["words"] = {"titles": list(words.VIEWER_TITLES), "strip": words.VIEWER_STRIP, "computing": words.VIEWER_COMPUTING}
        summary = Summary.of_piece(payload)
        top = summary.predictions[0][0]
        status = status_line(summary, model_name, time.perf_counter() - started, words)
        return [
            payload,
            predictions(summary, words),
            gr.update(choices=class_choices(summary), value=top),
            top,
            status + (f"\n\n{words.CLUSTER_FALLBACK.format(url=self.cluster.explainer.url)}" if fell_back else ""),
            banner(model_name, not summary.trained, summary.fallback_reason, words),
        ]

    @user_errors
    def on_rest(self, image, model_name, top_k, method="gradcam", request: gr.Request = None) -> Iterator[dict]:
        """Each top-k class's guided map, then its maps at every stage, each sent as soon as the
        background completion has stored it (the top class first)."""
        if not image or method in PERTURBATION_METHODS:
            yield gr.skip()
            return
        session = session_of(request)
        key = self.key(image, model_name, top_k, session)
        with self.answering.alone("rest", session, key, method) as alone:
            if not alone:
                yield gr.skip()
                return
            remote = self.cluster.rest(session, key) if self.cluster is not None else None
            if remote is not None and (yield from remote):
                return
            explanation = self._explanation(image, key, session)
            yield from stored_pieces(explanation, payload_name(key), method, PANEL_SIDE, lambda condition: self.completer.wait_until(explanation, condition))

    @user_errors
    def on_method(self, image, model_name, top_k, method, class_idx, request: gr.Request = None) -> Iterator[dict]:
        """Another CAM method: the maps of the class on screen first, then of the rest of the top-k."""
        if not image:
            yield gr.skip()
            return
        session = session_of(request)
        key = self.key(image, model_name, top_k, session)
        piece = self.cluster.method_maps(session, image, key, method, class_idx) if self.cluster is not None else None
        if piece is not None:
            yield {**piece, "switchMethod": True}
            return
        explanation = self._explanation(image, key, session)
        selected = explanation.top_classes[0] if class_idx is None else int(class_idx)
        classes = method_classes(explanation, method, selected)
        yield {**self.payload(explanation, key, [selected], method), "switchMethod": True}  # the viewer's method follows this piece only
        for c in classes:
            if c != selected:
                yield self.payload(explanation, key, [c], method)

    @user_errors
    def on_need(self, image, model_name, top_k, evt: gr.SelectData, request: gr.Request = None) -> dict:
        """Maps the page cannot expect otherwise (a class outside the top-k, or a perturbation
        method's other class), asked for by the viewer itself."""
        method = evt.value if evt.value in METHODS else "gradcam"
        session = session_of(request)
        key = self.key(image, model_name, top_k, session)
        class_idx = int(evt.index)
        piece = self.cluster.method_maps(session, image, key, method, class_idx, others=False) if self.cluster is not None else None
        if piece is not None:
            return piece
        return self.payload(self._explanation(image, key, session), key, [class_idx], method)

    def on_unload(self, request: gr.Request) -> None:
        self.cache.drop_session(session_of(request))
        if self.cluster is not None:
            self.cluster.drop_session(session_of(request))
        self._precisions.pop(session_of(request), None)

