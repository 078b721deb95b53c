"""Who runs the network next: a student waiting for a first view before any background work.

Two kinds of network pass share the CPU:

* **first views** (a new image on the page or through /explain, and a switch that needs a pass
  the background has not made yet): someone is watching a spinner;
* **background completions** (``Explanation.complete()``: the whole top-k at every layer, so
  later switches are cache hits) and other work nobody is waiting on this instant.

:class:`NetworkScheduler` admits at most ``slots`` first views at once, first come first served.
A background pass starts only when no first view is waiting or running and a slot is free; a
first view never waits for a background pass. A pass cannot be stopped halfway, but a
completion's pass is many steps (a forward pass, then backward passes class by class): one
already running finishes its current step beside the first view and waits before the next
while first views run, holding its graph, unless someone waits for that very completion.

:class:`Completer` runs ``complete()`` for each new Explanation on background threads under that
rule, once per Explanation, and lets a handler wait for it, or only for one class's gradients
(the page's layer1..layer4 strip, whose top class the pass stores first), or take it over at
first-view priority (a switch that cannot wait).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import threading
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator

from core import Explanation
from core.passes import Pause
from core.settings import positive_setting

#: Overrides the number of network passes run at once (a positive integer).
CONCURRENCY_ENV = "GRADCAM_NETWORK_CONCURRENCY"
#: At exit, how long a running background pass may take to finish.
EXIT_GRACE_S = 60.0
#: How much lower the CPU priority of background completions is than the page's (in nice steps; 19 is the lowest).
BACKGROUND_NICE = 10


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's core count)."""
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def network_concurrency(environ: dict[str, str] | os._Environ = os.environ, cores: int | None = None) -> int:
    """How many network passes run at once: $GRADCAM_NETWORK_CONCURRENCY, else one per 4 cores.

    One batch-1 pass keeps about two to four cores busy (torch splits each convolution over its
    threads), so on a 2-vCPU Space a second concurrent pass only slows both down; from 8 cores on,
    passes side by side use cores that one pass leaves idle.
    """
    slots = positive_setting(environ, CONCURRENCY_ENV, int, "a positive integer")
    return slots if slots is not None else max(1, (cores if cores is not None else available_cores()) // 4)


def background_priority() -> None:
    """Lower the calling thread's CPU priority by BACKGROUND_NICE steps (Linux: nice is per thread).

    The scheduler keeps a first view from queuing behind a background pass, but a pass already
    running still shares the cores with it and with the server sending an answer: /explain's
    own completion, started as its answer left, slowed that answer's delivery. At a lower
    priority the kernel gives the cores to them first; an idle machine runs the pass at full
    speed. OpenMP's worker threads, created by this thread's first parallel region, inherit it.
    """
    with contextlib.suppress(AttributeError, OSError):  # no thread priorities here: normal priority
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICE))


class InFlight:
    """Counts the handlers running now, so that the process can let them end before it exits.

    Gradio runs handlers on daemon threads. One still inside a torch call when the interpreter
    finalises is unwound through C++ frames that do not allow it, and the whole process aborts
    ("terminate called without an active exception", exit status 134): a test run or a server
    that stops right after an event would fail for nothing.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._count = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._condition:
            self._count += 1
        try:
            yield
        finally:
            with self._condition:
                self._count -= 1
                self._condition.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self._count == 0, timeout)


#: The page's handlers (demo.ui._user_errors enters it); waited for at exit.
HANDLERS = InFlight()
atexit.register(HANDLERS.wait_idle, EXIT_GRACE_S)


class NetworkScheduler:
    """A priority gate in front of the network: first views before background work."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, not {slots}")
        self.slots = slots
        self._condition = threading.Condition()
        self._tickets = itertools.count()
        self._queue: deque[int] = deque()  # waiting first views, in arrival order
        self._first_views = 0  # running
        self._background = 0  # running
        self._yielding = 0  # background passes waiting between two steps

    @property
    def waiting(self) -> int:
        """First views waiting for a slot (the tests watch this)."""
        with self._condition:
            return len(self._queue)

    @property
    def yielding(self) -> int:
        """Background passes paused between two steps for first views (the tests watch this)."""
        with self._condition:
            return self._yielding

    @property
    def running(self) -> tuple[int, int]:
        """(first views, background passes) running now."""
        with self._condition:
            return self._first_views, self._background

    @contextlib.contextmanager
    def first_view(self) -> Iterator[None]:
        """Hold a slot for a pass someone is waiting for; first come, first served."""
        with self._condition:
            ticket = next(self._tickets)
            self._queue.append(ticket)
            self._condition.wait_for(lambda: self._queue[0] == ticket and self._first_views < self.slots)
            self._queue.popleft()
            self._first_views += 1
            self._condition.notify_all()  # the next in line may fit too
        with self._counted_out():
            yield

    @contextlib.contextmanager
    def lead(self) -> Iterator[None]:
        """Hold a first view's slot once no first view waits: for a pass someone waits for after
        their first view (its top class whole), which need not wait for a background pass."""
        with self._condition:
            self._condition.wait_for(lambda: not self._queue and self._first_views < self.slots)
            self._first_views += 1
        with self._counted_out():
            yield

    @contextlib.contextmanager
    def _counted_out(self) -> Iterator[None]:
        """For a pass counted in ``_first_views`` on admission: counts it out when it ends."""
        try:
            yield
        finally:
            with self._condition:
                self._first_views -= 1
                self._condition.notify_all()

    def yield_to_first_views(self, waited_on: Callable[[], bool]) -> None:
        """Between two steps of a background pass: waits while a first view waits or runs, unless
        ``waited_on()`` says that someone waits for this very pass (maybe from a first view's slot).

        Nice alone did not keep a running completion off a first view's cores: in process, a
        page's lead pass took 1.0 s alone, 1.6 to 1.9 s beside a completion 10 nice steps lower,
        and 1.2 s beside one that yields here (benchmarks and figures: docs/performance.md).
        """
        def held_up() -> bool:
            return bool(self._queue or self._first_views) and not waited_on()

        with self._condition:
            if not held_up():
                return
            self._yielding += 1
            try:
                while held_up():
                    self._condition.wait(0.02)  # waited_on() changes without a notification
            finally:
                self._yielding -= 1

    @contextlib.contextmanager
    def background(self) -> Iterator[None]:
        """Hold a slot only while no first view waits or runs."""
        with self._condition:
            self._condition.wait_for(
                lambda: not self._queue and self._first_views == 0 and self._background < self.slots
            )
            self._background += 1
        try:
            yield
        finally:
            with self._condition:
                self._background -= 1
                self._condition.notify_all()


def wait_on_completion(job: Future, explanation: Explanation, condition: Callable[[], bool]) -> None:
    """Waits until condition() holds or ``job`` (its completion) has ended without it, raising the
    completion's error if it failed."""
    while not explanation.wait_until(condition, timeout=0.1):
        if job.done():  # ended without it: the caller's own call computes it
            job.result()
            return


class Completer:
    """Completes Explanations in the background, once each, yielding to first views.

    A completion starts with ``explanation.lead()``, the top class whole (the page's strip and
    guided panels wait for it), at the page's CPU priority; the rest of the top-k follows at
    BACKGROUND_NICE. Both wait for a background slot, but a page waiting for its top class need
    not wait for another's completion: :meth:`lead` runs it beside that.

    The queue holds only weak references: an Explanation the session cache has dropped by the
    time a slot frees up is skipped, not completed for nobody.
    """

    def __init__(self, scheduler: NetworkScheduler) -> None:
        self.scheduler = scheduler
        # A thread inherits its creator's priority, and the workers lower theirs: the lead's
        # thread is started here, by the page's.
        self._lead_thread = ThreadPoolExecutor(1, thread_name_prefix="gradcam-lead")
        self._lead_thread.submit(int).result()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._jobs: weakref.WeakKeyDictionary[Explanation, Future] = weakref.WeakKeyDictionary()
        self._waited: weakref.WeakKeyDictionary[Explanation, int] = weakref.WeakKeyDictionary()  # switches waiting for a running job
        self._pending: deque[tuple[weakref.ref, Future]] = deque()
        self._workers = 0
        self._closed = False
        # A daemon thread still inside torch when the interpreter exits aborts the process
        # ("terminate called without an active exception"): let the running pass end first.
        atexit.register(self.close, EXIT_GRACE_S)

    def submit(self, explanation: Explanation) -> Future:
        """Schedule explanation.complete() unless it is scheduled or done; returns its future."""
        with self._lock:
            job = self._jobs.get(explanation)
            if job is not None:
                return job
            job = Future()
            self._jobs[explanation] = job
            if self._closed:
                job.cancel()
                return job
            self._pending.append((weakref.ref(explanation), job))
            if self._workers < self.scheduler.slots:
                self._workers += 1
                threading.Thread(target=self._work, name="gradcam-completer", daemon=True).start()
            return job

    def wait(self, explanation: Explanation) -> Explanation:
        """The completed Explanation, waiting for the background (the page's strip can wait)."""
        self.submit(explanation).result()
        return explanation

    def wait_until(self, explanation: Explanation, condition: Callable[[], bool]) -> Explanation:
        """Until condition() holds (the completion stores the top class first, long before the
        rest of the top-k: the page's strip waits for that class only) or the completion has ended."""
        wait_on_completion(self.submit(explanation), explanation, condition)
        return explanation

    def now(self, explanation: Explanation, until: Callable[[], bool] | None = None) -> Explanation:
        """Complete it now, at first-view priority, unless the background already is on it.

        A switch made before the background reached this Explanation takes the job over, so it
        does not queue behind every other student's completion. One made while the background is
        on it waits for the whole completion, or only until ``until()`` holds (the switch's class).
        """
        with self._lock:
            job = self._jobs.get(explanation)
            if job is None:
                job = Future()
                self._jobs[explanation] = job
                take_over = True
            else:
                take_over = self._claim(job)
            if take_over:
                job.set_running_or_notify_cancel()
        if not take_over:
            with self._waiting_for(explanation):
                if until is None:
                    job.result()
                else:
                    wait_on_completion(job, explanation, until)
            return explanation
        try:
            with self.scheduler.first_view():
                explanation.complete()
        except BaseException as err:
            job.set_exception(err)
            raise
        job.set_result(None)  # not the Explanation: the weak-keyed table would keep it alive
        return explanation

    def lead(self, explanation: Explanation) -> None:
        """Starts the top class whole (``explanation.lead()``: the page's guided panels and strip
        wait for it) on a thread of the caller's priority, at lead priority in the scheduler
        (:meth:`NetworkScheduler.lead`), if its completion is still queued behind another's; a
        running completion leads with it. Returns at once: the caller waits for what it needs."""
        with self._lock:
            job = self._jobs.get(explanation)
            if job is None or job.running() or job.done():
                return
        threading.Thread(target=self._lead_beside, args=(explanation,), name="gradcam-lead-beside", daemon=True).start()

    def _lead_beside(self, explanation: Explanation) -> None:
        with HANDLERS(), contextlib.suppress(Exception):  # its completion computes it anyway, and keeps the error
            with self.scheduler.lead():
                explanation.lead()

    def started(self, explanation: Explanation) -> bool:
        """Whether its completion is running or has ended."""
        with self._lock:
            job = self._jobs.get(explanation)
            return job is not None and (job.running() or job.done())

    def settle(self, explanation: Explanation) -> None:
        """Wait if a background completion of this Explanation is running (it holds its lock)."""
        with self._lock:
            job = self._jobs.get(explanation)
            running = job is not None and job.running()
        if running:
            with self._waiting_for(explanation):
                job.result()

    def done(self, explanation: Explanation) -> bool:
        with self._lock:
            job = self._jobs.get(explanation)
            return job is not None and job.done() and not job.cancelled() and job.exception() is None

    def close(self, timeout: float | None = None) -> bool:
        """Drop the queued completions and wait for the running ones; False on timeout."""
        with self._lock:
            self._closed = True
            dropped = list(self._pending)
            self._pending.clear()
        for _, job in dropped:
            job.cancel()
        with self._idle:
            return self._idle.wait_for(lambda: self._workers == 0, timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no completion is queued or running (tests, benchmarks); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending and self._workers == 0, timeout)

    # ----- inside ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _waiting_for(self, explanation: Explanation) -> Iterator[None]:
        """A switch waits for this Explanation's running completion: it must not pause for first views."""
        with self._lock:
            self._waited[explanation] = self._waited.get(explanation, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._waited[explanation] -= 1

    def _pause(self, explanation: Explanation) -> Pause:
        """Where a completion yields to first views, unless someone waits for it."""

        def waited(on_pass: Callable[[], bool]) -> bool:
            with self._lock:
                return on_pass() or self._waited.get(explanation, 0) > 0

        return lambda on_pass: self.scheduler.yield_to_first_views(lambda: waited(on_pass))

    def _claim(self, job: Future) -> bool:
        """Take a job no worker has started out of the queue (self._lock held)."""
        for n, (_, pending) in enumerate(self._pending):
            if pending is job:
                del self._pending[n]
                return True
        return False

    def _work(self) -> None:
        background_priority()
        # A worker first waits for a background slot, and only then takes the next job: until
        # then every queued job can still be taken over by a student's switch.
        while True:
            with self.scheduler.background():
                with self._lock:
                    explanation = None
                    while self._pending and explanation is None:
                        ref, job = self._pending.popleft()
                        explanation = ref()
                        if explanation is None:
                            job.cancel()  # dropped from the cache: nobody can wait for it
                        else:
                            job.set_running_or_notify_cancel()
                    if explanation is None:
                        self._workers -= 1
                        self._idle.notify_all()
                        return
                try:
                    self._lead_thread.submit(explanation.lead).result()
                    explanation.complete(self._pause(explanation))
                except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the job
                    job.set_exception(err)
                else:
                    job.set_result(None)  # not the Explanation: the weak-keyed table would keep it alive
                del explanation
