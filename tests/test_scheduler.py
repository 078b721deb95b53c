"""The network scheduler: first views before background completions, and /explain's completion.

Orders of events are asserted, never durations: each test holds a pass open with an Event and
releases it only once the scheduler shows the state the test is about.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core import explain
from core.forward import Twin
from core.scheduler import BACKGROUND_NICE, CONCURRENCY_ENV, Completer, NetworkScheduler, network_concurrency
from tests.models import random_resnet
from tests.test_engine import smooth_image

ROOT = Path(__file__).resolve().parent.parent
PATIENCE = 60.0  # seconds before a stuck test fails instead of hanging


def eventually(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.005)


def start(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


class HeldPass:
    """A first view that holds its slot until released."""

    def __init__(self, scheduler: NetworkScheduler, events: list[str], name: str) -> None:
        self.inside, self.release = threading.Event(), threading.Event()
        self.thread = start(self._run, scheduler, events, name)
        assert self.inside.wait(PATIENCE)

    def _run(self, scheduler, events, name) -> None:
        with scheduler.first_view():
            events.append(name)
            self.inside.set()
            self.release.wait(PATIENCE)


def test_background_work_waits_for_every_waiting_first_view():
    scheduler = NetworkScheduler(1)
    events: list[str] = []
    first = HeldPass(scheduler, events, "first view A")

    def background() -> None:
        with scheduler.background():
            events.append("background")

    def first_view(name: str) -> None:
        with scheduler.first_view():
            events.append(name)

    threads = [start(background)]
    threads.append(start(first_view, "first view B"))
    eventually(lambda: scheduler.waiting == 1, "first view B waits")
    threads.append(start(first_view, "first view C"))
    eventually(lambda: scheduler.waiting == 2, "first view C waits")
    first.release.set()
    for thread in [first.thread, *threads]:
        thread.join(PATIENCE)
    assert events == ["first view A", "first view B", "first view C", "background"]


def test_a_first_view_never_waits_for_a_background_pass():
    scheduler = NetworkScheduler(1)
    inside, release, events = threading.Event(), threading.Event(), []

    def background() -> None:
        with scheduler.background():
            events.append("background starts")
            inside.set()
            release.wait(PATIENCE)
            events.append("background ends")

    thread = start(background)
    assert inside.wait(PATIENCE)
    with scheduler.first_view():  # would hang until PATIENCE if it queued behind the background
        events.append("first view")
        assert scheduler.running == (1, 1)
    release.set()
    thread.join(PATIENCE)
    assert events == ["background starts", "first view", "background ends"]


class FakeExplanation:
    """What the Completer needs of an Explanation: lead() and complete(), the latter recorded."""

    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events

    def lead(self) -> "FakeExplanation":
        return self

    def complete(self, pause=None) -> "FakeExplanation":
        self.events.append(f"complete {self.name}")
        return self


def test_a_switch_takes_over_a_queued_completion_at_first_view_priority():
    scheduler = NetworkScheduler(1)
    completer = Completer(scheduler)
    events: list[str] = []
    first = HeldPass(scheduler, events, "first view")
    queued = FakeExplanation("queued", events)
    job = completer.submit(queued)
    assert completer.submit(queued) is job, "submitted once"
    switch = start(completer.now, queued)  # a student's layer switch on that image
    eventually(lambda: scheduler.waiting == 1, "the switch waits for a first-view slot")
    first.release.set()
    switch.join(PATIENCE)
    assert job.result(PATIENCE) is None and job.done()
    assert completer.join(PATIENCE)
    assert events == ["first view", "complete queued"], "completed once, by the switch"


def test_a_page_waiting_for_its_top_class_leads_beside_another_completion():
    """A completion queued behind another's would leave its page's guided panels waiting for the
    whole of the other; the page's lead runs beside it, and the queue still completes both once."""
    completer = Completer(NetworkScheduler(1))
    events: list[str] = []
    inside, release, led = threading.Event(), threading.Event(), threading.Event()

    class Running(FakeExplanation):
        def lead(self):
            inside.set()
            release.wait(PATIENCE)
            return self

    class Queued(FakeExplanation):
        def lead(self):
            led.set()
            return self

    running, queued = Running("running", events), Queued("queued", events)
    completer.submit(running)
    assert inside.wait(PATIENCE), "the first completion holds the background slot"
    completer.submit(queued)
    completer.lead(queued)
    assert led.wait(PATIENCE), "the queued page's top class waited for the other completion"
    release.set()
    assert completer.join(PATIENCE)
    assert events == ["complete running", "complete queued"]


def test_completions_of_dropped_explanations_are_skipped():
    scheduler = NetworkScheduler(1)
    completer = Completer(scheduler)
    events: list[str] = []
    first = HeldPass(scheduler, events, "first view")
    kept, dropped = FakeExplanation("kept", events), FakeExplanation("dropped", events)
    completer.submit(dropped)
    completer.submit(kept)
    del dropped  # the session cache let go of it while it waited
    first.release.set()
    assert completer.wait(kept) is kept
    assert completer.join(PATIENCE)
    assert events == ["first view", "complete kept"]


def test_concurrency_follows_the_cores_unless_the_variable_says_otherwise():
    assert network_concurrency({}, cores=2) == 1, "one pass saturates two vCPUs"
    assert network_concurrency({}, cores=4) == 1
    assert network_concurrency({}, cores=16) == 4
    assert network_concurrency({CONCURRENCY_ENV: "3"}, cores=2) == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match=CONCURRENCY_ENV):
            network_concurrency({CONCURRENCY_ENV: bad}, cores=2)


def test_the_app_reads_the_concurrency_variable():
    env = {**os.environ, CONCURRENCY_ENV: "3", "GRADIO_ANALYTICS_ENABLED": "False"}
    code = "import demo.ui as ui; e = ui.Explorer('random'); print(ui.NETWORK_CONCURRENCY, e.scheduler.slots, ui.NETWORK_EVENTS)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["3", "3", "24"]


@pytest.fixture
def forward_calls(monkeypatch):
    calls = []
    original = Twin.forward
    monkeypatch.setattr(Twin, "forward", lambda self, *args, **kwargs: (calls.append(1), original(self, *args, **kwargs))[1])
    return calls


def test_after_explain_another_layer_or_class_is_a_cache_hit(tmp_path, forward_calls):
    from demo.explore import Explorer
    from demo.pictures import ServerPictures

    explorer = Explorer("random")
    pictures = ServerPictures(explorer)
    photo = tmp_path / "photo.png"
    smooth_image(320, 240, seed=12).save(photo)
    first = pictures.api_explain(str(photo), "resnet18", 4, None, 5)
    assert explorer.completer.join(PATIENCE)
    assert len(forward_calls) == 2, "the first view, then the top-k completed at once for /explain's guided map"
    assert len(first[5]) == 5
    second_class = explorer.explanation(str(photo), "resnet18", 5, "direct-call").top_classes[1]  # cached
    for layer, class_idx in ((1, None), (2, second_class), (3, second_class)):
        pictures.api_explain(str(photo), "resnet18", layer, class_idx, 5)
    assert len(forward_calls) == 2, "no network pass after the completion"


def test_closing_lets_the_running_completion_finish_and_drops_the_queued_ones():
    """At exit a daemon thread inside torch would abort the process: close() waits for it."""
    scheduler = NetworkScheduler(1)
    completer = Completer(scheduler)
    inside, release, events = threading.Event(), threading.Event(), []

    class Slow(FakeExplanation):
        def complete(self, pause=None):
            inside.set()
            release.wait(PATIENCE)
            return super().complete()

    running, queued = Slow("running", events), FakeExplanation("queued", events)
    first = completer.submit(running)
    assert inside.wait(PATIENCE)
    second = completer.submit(queued)
    closer = start(completer.close, PATIENCE)
    eventually(lambda: completer._closed, "close() has started")
    assert closer.is_alive(), "close() waits for the running pass"
    release.set()
    closer.join(PATIENCE)
    assert first.result(PATIENCE) is None and second.cancelled()
    assert events == ["complete running"]
    assert completer.submit(FakeExplanation("late", events)).cancelled(), "nothing new after close"


def test_a_completed_explanation_is_not_kept_alive_by_the_completer():
    """The table of jobs is weak-keyed: a job that held its Explanation would pin it forever."""
    import gc
    import weakref

    completer = Completer(NetworkScheduler(1))
    explanation = FakeExplanation("done", [])
    completer.wait(explanation)
    assert completer.done(explanation)
    gone = weakref.ref(explanation)
    del explanation
    gc.collect()
    assert gone() is None, "the session cache must be able to free it"


def test_a_view_has_its_class_before_the_completion_has_the_rest_of_the_top_k():
    """The completion stores the classes one by one; a view of one uses it while the pass goes on.

    The first view holds layer4's closed form; the completion stores the top class's stages
    first. Its pass is paused right after that, still holding the
    pass lock: waiting for the whole completion, or for that lock, would hang here.
    """
    explanation = explain(random_resnet("resnet18"), smooth_image(96, 80, seed=4), top_k=3, lazy=True)
    second, _, third = explanation.top_classes  # "second": the completion's first class, the top one
    assert not explanation.stored(second, stages=True), "the first view took no backward pass to the stages"
    stored_second, release = threading.Event(), threading.Event()
    store = explanation._gradients.store

    def store_then_pause(class_idx, **parts):
        store(class_idx, **parts)
        if class_idx == second and parts.get("stages") is not None:
            stored_second.set()
            release.wait(PATIENCE)

    explanation._gradients.store = store_then_pause
    completer = Completer(NetworkScheduler(1))
    has_second = lambda: explanation.stored(second, stages=True)  # noqa: E731
    strip: list = []

    def draw_strip() -> None:
        completer.wait_until(explanation, has_second)
        strip.extend(explanation.cam(second, layer) for layer in (1, 2, 3, 4))

    try:
        completer.submit(explanation)
        assert stored_second.wait(PATIENCE)
        drawer = start(draw_strip)
        drawer.join(10.0)
        assert not drawer.is_alive(), "the strip waited for the rest of the completion"
        assert len(strip) == 4 and all(m.shape == (80, 96) for m in strip)
        switch = start(completer.now, explanation, has_second)  # a switch to that class
        switch.join(10.0)
        assert not switch.is_alive(), "the switch waited for the rest of the completion"
        assert not explanation.stored(third, stages=True), "the pass was still paused"
    finally:
        release.set()
    assert completer.join(PATIENCE)
    assert all(explanation.stored(c, stages=True, guided=True) for c in explanation.top_classes)


def paused_completion(explanation, scheduler: NetworkScheduler, events: list[str]) -> tuple[Completer, HeldPass]:
    """The explanation's background completion, paused for a first view that came in while it
    ran its first backward pass; returns the completer and that first view, still held."""
    completer = Completer(scheduler)
    store = explanation._gradients.store
    views: list[HeldPass] = []

    def store_then_first_view(class_idx, **parts):
        store(class_idx, **parts)
        events.append(f"stored {class_idx} {'stages' if parts.get('stages') is not None else 'guided'}")
        if not views and threading.current_thread().name.startswith("gradcam-completer"):
            views.append(HeldPass(scheduler, events, "first view"))  # enters before the pass's next step

    explanation._gradients.store = store_then_first_view
    completer.submit(explanation)
    eventually(lambda: scheduler.yielding == 1, "the completion pauses before its next step")
    return completer, views[0]


def test_a_running_completion_pauses_between_classes_while_a_first_view_runs():
    """Nice alone did not keep a completion off a first view's cores; it waits between its steps."""
    explanation = explain(random_resnet("resnet18"), smooth_image(96, 80, seed=4), top_k=3, lazy=True)
    scheduler, events = NetworkScheduler(1), []
    completer, first_view = paused_completion(explanation, scheduler, events)
    stored = len(events)
    events.append("first view ends")
    first_view.release.set()
    assert completer.join(PATIENCE)
    assert all(explanation.stored(c, stages=True, guided=True) for c in explanation.top_classes)
    assert events[stored - 1 : stored + 1] == ["first view", "first view ends"]
    assert events[stored + 1].startswith("stored"), "the next step came after the first view"
    assert scheduler.yielding == 0


@pytest.mark.parametrize("waiter", ["switch", "pass lock"])
def test_a_paused_completion_goes_on_for_whoever_waits_for_it(waiter):
    """A student's switch to a class the paused completion has not stored, or a thread waiting
    for its pass lock (perhaps from a first view's slot), would otherwise wait for every first view."""
    explanation = explain(random_resnet("resnet18"), smooth_image(96, 80, seed=4), top_k=3, lazy=True)
    scheduler, events = NetworkScheduler(1), []
    completer, first_view = paused_completion(explanation, scheduler, events)
    last = explanation.top_classes[-1]
    try:
        if waiter == "switch":
            thread = start(completer.now, explanation, lambda: explanation.drawable(last, 1))
        else:
            thread = start(explanation.gradients, last, 1)
        thread.join(PATIENCE / 2)  # the held first view gives up after PATIENCE
        assert not thread.is_alive() and explanation.stored(last, stages=True), "it waited for the first view"
    finally:
        events.append("first view ends")
        first_view.release.set()
    assert completer.join(PATIENCE)


def test_a_pass_paused_in_its_forward_pass_lets_a_model_be_traced():
    """A forward pass holds the tracing gate: a pass paused there for a first view that waits
    for a new model's twin (traced behind that gate) would wait forever."""
    from core import forward

    explanation = explain(random_resnet("resnet18"), smooth_image(96, 80, seed=4), top_k=3, lazy=True)
    scheduler, events = NetworkScheduler(1), []
    first_view = HeldPass(scheduler, events, "first view")
    calls = []

    def pause(waited_on) -> None:  # the third call is the forward pass's second rectifier
        calls.append(forward._gate._running)
        if len(calls) == 3:
            scheduler.yield_to_first_views(waited_on)

    try:
        completion = start(explanation.complete, pause)
        eventually(lambda: scheduler.yielding == 1, "the pass pauses")
        assert calls[-1] == 1, "paused inside the forward pass, holding the tracing gate"
        tracing = start(forward.twin_for, random_resnet("resnet34"))
        tracing.join(PATIENCE / 2)  # the held first view gives up after PATIENCE
        completion.join(PATIENCE / 2)
        assert not tracing.is_alive() and not completion.is_alive(), "the trace waited for the first view"
    finally:
        first_view.release.set()
    assert all(explanation.stored(c, stages=True, guided=True) for c in explanation.top_classes)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="thread priorities are a POSIX feature")
def test_background_completions_run_at_a_lower_cpu_priority_than_the_page():
    """The kernel gives the cores to first views and to the server sending answers first. The
    top class (lead), which the page's strip and guided panels wait for, keeps the page's."""

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    class Recording(FakeExplanation):
        def lead(self):
            self.lead_nice = nice()
            return self

        def complete(self, pause=None):
            self.nice = nice()
            return super().complete()

    page_nice = nice()
    completer = Completer(NetworkScheduler(1))
    explanations = [Recording(name, []) for name in ("first", "second")]
    for explanation in explanations:
        completer.wait(explanation)
    assert [e.lead_nice for e in explanations] == [page_nice] * 2
    assert [e.nice for e in explanations] == [min(19, page_nice + BACKGROUND_NICE)] * 2
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == page_nice, "the caller's thread keeps its priority"
