"""The models of a process: official ImageNet weights where they can be had, untrained otherwise,
leased within a memory budget (:mod:`core.admission`).

The page (demo.explore) and a Ray Serve replica (cluster.explainer) share this shelf, so a
replica loads models lazily and evicts them by the same rules as the embedded app.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator

from torch import nn

from core.admission import ModelAdmission, model_memory_budget
from core.engine import Explanation, native_bfloat16
from core.footprint import footprint_mb
from core.weights import WeightsUnavailableError, load_model


class ModelShelf:
    """The page's models: official ImageNet weights where they can be had, untrained otherwise,
    leased within a memory budget (see core.admission).

    A model whose ImageNet weights are unavailable falls back to random weights once, and the
    reason is kept so the page can say why and how to fix it.

    An Explanation holds its model only while someone holds it for it (:meth:`hold`): the
    request that made it, until its background completion has stored the whole top-k, and any
    later request for the span of a pass (a class outside the top-k, Score-CAM, faithfulness).
    Each hold is a lease, so the budget counts it; when the last hold ends the Explanation lets
    go of its model and twin and keeps only its maps. So the session cache pins no model, and
    a cached Explanation whose model was evicted gets it back, through the queue, when a pass
    needs it. Hold counts are per Explanation, under a lock of its own: a hold never takes the
    model from a pass that another request is running on the same Explanation.
    """

    def __init__(
        self,
        weights: str = "imagenet",
        loader: Callable[..., nn.Module] = functools.partial(load_model, cached=False),
        budget_mb: float | None = None,
        cost_mb: Callable[[str], float] | None = None,
    ) -> None:
        self.weights = weights
        self._loader = loader
        self._fallback_reasons: dict[str, str] = {}
        self._lock = threading.Lock()
        self.admission = ModelAdmission(
            model_memory_budget() if budget_mb is None else budget_mb,
            cost_mb or functools.partial(footprint_mb, bfloat16=native_bfloat16()),
            self._load,
        )
        self._holds: weakref.WeakKeyDictionary[Explanation, _Holds] = weakref.WeakKeyDictionary()

    def lease(self, name: str, on_wait: Callable[[int], None] | None = None) -> ContextManager[nn.Module]:
        """The model for the block, counted in the budget; ``on_wait(ahead)`` while it waits for room."""
        return self.admission.lease(name, on_wait)

    def get(self, name: str) -> nn.Module:
        """The model for a glance (its labels): the reference is not counted, so run nothing on it."""
        with self.lease(name) as model:
            return model

    def hold(self, explanation: Explanation, on_wait: Callable[[int], None] | None = None) -> Callable[[], None]:
        """Lends the Explanation its model (the shelf's model of its ``info.name``) until the
        returned function is called, once."""
        with self._lock:
            holds = self._holds.setdefault(explanation, _Holds())
        leases = contextlib.ExitStack()
        model = leases.enter_context(self.lease(explanation.info.name, on_wait))
        try:
            with holds.lock:
                if not holds.count:
                    explanation.hold_network(model)
                holds.count += 1
        except BaseException:
            leases.close()
            raise
        del model
        held = weakref.ref(explanation)  # the release may outlive the Explanation (a completion's callback)

        def release() -> None:
            with holds.lock:
                holds.count -= 1
                still_there = held()
                if not holds.count and still_there is not None:
                    still_there.hold_network(None)
                del still_there
            leases.close()

        return release

    @contextlib.contextmanager
    def holding(self, explanation: Explanation, on_wait: Callable[[int], None] | None = None) -> Iterator[None]:
        """The Explanation holds its model for the block: for passes after its completion."""
        release = self.hold(explanation, on_wait)
        try:
            yield
        finally:
            release()

    def _load(self, name: str) -> nn.Module:
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


@dataclass(eq=False)
class _Holds:
    """How many holds an Explanation's model has now; the lock orders lending and letting go."""

    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
