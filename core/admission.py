"""Which models may be in memory at once: a budget in MB, and one first-come-first-served queue for it.

A model in memory costs its parameters, its twins and the peak of a pass through it
(:mod:`core.footprint`). Without a budget, ten students picking ten models at once held ten
models, their twins and ten autograd graphs, and the process grew from 0.9 to 6.5 GB.

The rules, all under one lock:

* A request for a model already in memory, in use or idle, joins it at once: it needs no memory.
* Any other request waits in one queue, first come first served. The head of the queue is let
  in when its model fits beside the models in use; idle models make room for it, least recently
  used first. A model in use is never evicted: each lease counts, and only a model whose count
  is zero is idle.
* A model larger than the whole budget is let in as soon as no other model is in use: served
  alone rather than never.
* No waiting request is failed or timed out. A waiter is told, each time it changes, how many
  requests are ahead of it, so that its page can say why it waits.
* A model whose last lease ends stays in memory, idle, until a request needs its room.

The request that is let in loads the model outside the lock; requests joining it meanwhile wait
for that load. An evicted model is dropped, then garbage-collected at once: its twins' traced
graphs are reference cycles, which would otherwise keep its parameters until Python's next full
collection. glibc then hands the freed pages back to the system (``malloc_trim``): it would keep
most of them otherwise, and the process would stay as large as it ever was.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from core.settings import positive_setting

#: The memory, in MB, that the models in memory may cost together (see core.footprint).
BUDGET_ENV = "GRADCAM_MODEL_MEMORY_MB"
#: For a 16 GB Space: the ten-model burst (benchmarks/burst.py) then peaks under 3.5 GB, with the
#: ten Explanations (their maps) that the session cache keeps. Every model fits in it; two at a
#: time unless one of them is large (efficientnet_v2_s, whose pass at 768×384 costs 1.1 GB, fits
#: only beside a model of up to 370 MB).
DEFAULT_BUDGET_MB = 1500.0


def model_memory_budget(environ: dict[str, str] | os._Environ = os.environ) -> float:
    """$GRADCAM_MODEL_MEMORY_MB, else DEFAULT_BUDGET_MB."""
    budget = positive_setting(environ, BUDGET_ENV, float, "a positive number of megabytes")
    return DEFAULT_BUDGET_MB if budget is None else budget


def free_memory() -> None:
    """Collect the dropped models' reference cycles, and give the freed memory back to the system."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator decides alone
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass(eq=False)
class _Resident:
    """A model in memory, or being loaded into it, and how many leases hold it."""

    cost_mb: float
    model: Future = field(default_factory=Future)
    users: int = 1


class ModelAdmission:
    """Leases models within a memory budget (see the module's docstring for the rules).

    ``cost_mb(name)`` is what a model costs in memory; ``load(name)`` loads it. Thread-safe.
    """

    def __init__(self, budget_mb: float, cost_mb: Callable[[str], float], load: Callable[[str], Any]) -> None:
        if not budget_mb > 0:
            raise ValueError(f"the model memory budget must be positive, not {budget_mb}")
        self.budget_mb = budget_mb
        self._cost_mb = cost_mb
        self._load = load
        self._condition = threading.Condition()
        self._resident: OrderedDict[str, _Resident] = OrderedDict()  # idle ones least recently used first
        self._queue: deque[object] = deque()  # one ticket per waiting request, in arrival order

    @contextlib.contextmanager
    def lease(self, name: str, on_wait: Callable[[int], None] | None = None) -> Iterator[Any]:
        """The model, in memory and counted as in use for the block.

        Waits while it does not fit; ``on_wait(ahead)`` is called, outside the lock, whenever the
        number of requests ahead in the queue changes (0: next in line, waiting for memory).
        """
        resident = self._admit(name, on_wait)
        try:
            yield resident.model.result()  # joining a load in progress waits for it, or gets its error
        finally:
            self._leave(name, resident)

    @property
    def waiting(self) -> int:
        """Requests waiting for memory now."""
        with self._condition:
            return len(self._queue)

    def resident(self) -> dict[str, int]:
        """The models in memory now, each with its number of leases (0: idle)."""
        with self._condition:
            return {name: r.users for name, r in self._resident.items()}

    # ----- inside ---------------------------------------------------------------------------

    def _admit(self, name: str, on_wait: Callable[[int], None] | None) -> _Resident:
        cost = self._cost_mb(name)  # outside the lock: it may build an architecture to count its parameters
        ticket = object()
        reported: int | None = None
        with self._condition:
            self._queue.append(ticket)
        try:
            while True:
                with self._condition:
                    resident, evicted = self._try_admit(name, cost, ticket)
                    if resident is None:
                        ahead = self._queue.index(ticket)
                        if ahead == reported:
                            self._condition.wait()
                            continue
                if resident is not None:
                    break
                reported = ahead
                if on_wait is not None:
                    on_wait(ahead)
        except BaseException:
            with self._condition:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                    self._condition.notify_all()
            raise
        if evicted is None:  # joined a model in memory, or one being loaded
            return resident
        if evicted:
            evicted.clear()  # the last references to those models: free them before loading another
            free_memory()
        self._fill(name, resident)
        return resident

    def _try_admit(self, name: str, cost: float, ticket: object) -> tuple[_Resident | None, list[_Resident] | None]:
        """(the resident, None) on joining one; (a new resident, the evicted) when let in; (None, None) to wait."""
        resident = self._resident.get(name)
        if resident is not None:
            resident.users += 1
            self._resident.move_to_end(name)
            self._leave_queue(ticket)
            return resident, None
        if self._queue[0] is not ticket or not self._fits(cost):
            return None, None
        evicted = self._make_room(cost)
        resident = self._resident[name] = _Resident(cost)
        self._leave_queue(ticket)
        return resident, evicted

    def _leave_queue(self, ticket: object) -> None:
        self._queue.remove(ticket)
        self._condition.notify_all()  # the next in line may fit too

    def _fits(self, cost: float) -> bool:
        in_use = [r.cost_mb for r in self._resident.values() if r.users]
        return not in_use or sum(in_use) + cost <= self.budget_mb

    def _make_room(self, cost: float) -> list[_Resident]:
        used = sum(r.cost_mb for r in self._resident.values())
        evicted = []
        for name, resident in list(self._resident.items()):
            if used + cost <= self.budget_mb:
                break
            if not resident.users:
                evicted.append(self._resident.pop(name))
                used -= resident.cost_mb
        return evicted

    def _fill(self, name: str, resident: _Resident) -> None:
        """Load the model the request was let in for; a failure frees its place for the next."""
        try:
            model = self._load(name)
        except BaseException as err:
            with self._condition:
                if self._resident.get(name) is resident:
                    del self._resident[name]
                    self._condition.notify_all()
            resident.model.set_exception(err)
            raise
        resident.model.set_result(model)

    def _leave(self, name: str, resident: _Resident) -> None:
        with self._condition:
            if self._resident.get(name) is not resident:  # its load failed: already gone
                return
            resident.users -= 1
            if not resident.users:
                self._resident.move_to_end(name)
                self._condition.notify_all()
