"""The memory budget for models: admission first come first served, nothing in use evicted, and
cached Explanations that pin no model.

The admission's own rules are tested with stand-in models (plain objects, costs in made-up MB).
The page's path is tested with the Explorer itself and tiny ResNets served under the names of
real models, each costing 1 MB against a budget of 2 MB: two fit at once.

Orders of events are asserted, never durations: a test holds a model in use and lets it go only
once the admission shows the state the test is about.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

from core import explain
from core.forward import TwinOutline
from core.weights import IMAGENET_MEAN, IMAGENET_STD, ModelInfo
from demo import texts
from core.admission import BUDGET_ENV, DEFAULT_BUDGET_MB, ModelAdmission, model_memory_budget
from core.shelf import ModelShelf
from tests.models import tiny_resnet
from tests.test_scheduler import PATIENCE, eventually, start

#: Background completions run at a lower CPU priority: on a loaded two-core machine they take a while.
COMPLETIONS = 300.0
NAMES = ("resnet18", "resnet34", "mobilenet_v3_large", "regnet_y_800mf")  # served as tiny ResNets


class Model:
    """A stand-in model (weakref-able, unlike object())."""


class Loads:
    """A loader that records each load, the models in memory at that moment, and which are alive."""

    def __init__(self, resident, make=lambda name: Model()) -> None:
        self._resident = resident  # what the admission has in memory now
        self._make = make
        self.order: list[str] = []
        self.in_memory: list[dict[str, int]] = []  # the admission's residents at each load, the new one included
        self.alive: list[weakref.ref] = []
        self.lock = threading.Lock()

    def __call__(self, name: str, **_):
        model = self._make(name)
        with self.lock:
            self.order.append(name)
            self.in_memory.append(self._resident())
            self.alive.append(weakref.ref(model))
        return model

    def live(self) -> list[str]:
        """The names of the loaded models still in memory."""
        gc.collect()
        return [model.gradcam_info.name for model in (ref() for ref in self.alive) if model is not None]


def admission(budget: float, costs: dict[str, float]) -> tuple[ModelAdmission, Loads]:
    gates: list[ModelAdmission] = []
    loads = Loads(lambda: gates[0].resident())
    gates.append(ModelAdmission(budget, costs.__getitem__, loads))
    return gates[0], loads


def lease_in_thread(gate: ModelAdmission, name: str, release: threading.Event, log: list, reports: list | None = None) -> threading.Thread:
    def run() -> None:
        with gate.lease(name, None if reports is None else reports.append) as model:
            log.append((name, model))
            release.wait(PATIENCE)

    return start(run)


# --------------------------------------------------------------------------- the rules


def test_more_models_at_once_than_fit_are_all_served_first_come_first_served_within_the_budget():
    costs = {"m0": 1.0, "m1": 1.0, "m2": 2.0, "m3": 1.0, "m4": 1.0, "m5": 1.0}
    gate, loads = admission(2.0, costs)
    release = threading.Event()
    served: list = []
    reports = {name: [] for name in costs}
    threads = []
    for name in costs:  # one after another, so that their order in the queue is known
        threads.append(lease_in_thread(gate, name, release, served, reports[name]))
        eventually(lambda: len(served) + gate.waiting == len(threads), f"{name} is served or queued")
    assert [name for name, _ in served] == ["m0", "m1"] and gate.waiting == 4
    assert [reports[f"m{n}"] for n in range(2, 6)] == [[0], [1], [2], [3]], "each waiter is told how many are ahead"
    release.set()
    for thread in threads:
        thread.join(PATIENCE)
    assert sorted(name for name, _ in served) == sorted(costs), "all served"
    assert [name for name, _ in served][2] == "m2", "first come, first served: m3 (fits sooner) does not pass m2"
    assert all(sum(costs[n] for n in resident) <= 2.0 for resident in loads.in_memory), loads.in_memory
    assert max(len(resident) for resident in loads.in_memory) == 2
    assert reports["m5"][0] == 3 and reports["m5"] == sorted(set(reports["m5"]), reverse=True), "a waiter hears as it moves up"


def test_a_model_in_use_is_never_evicted_an_idle_one_is():
    gate, loads = admission(2.0, {"a": 1.0, "b": 1.0, "c": 1.0})
    with gate.lease("a") as a:
        with gate.lease("b"):
            pass  # b is idle now, a in use
        with gate.lease("c"):
            assert gate.resident() == {"a": 1, "c": 1}, "the idle b made room, not a"
        with gate.lease("a") as again:
            assert again is a, "a model in use is shared, never loaded twice"
    assert loads.order == ["a", "b", "c"]


def test_a_request_waits_while_the_models_in_use_fill_the_budget_and_is_served_when_one_ends():
    gate, loads = admission(2.0, {"a": 1.0, "b": 1.0, "c": 1.0})
    release_a, release_b, release_c = threading.Event(), threading.Event(), threading.Event()
    served: list = []
    lease_in_thread(gate, "a", release_a, served)
    lease_in_thread(gate, "b", release_b, served)
    eventually(lambda: len(served) == 2, "a and b are in use")
    reports: list[int] = []
    c = lease_in_thread(gate, "c", release_c, served, reports)
    eventually(lambda: gate.waiting == 1, "c waits")
    time.sleep(0.2)
    assert [name for name, _ in served] == ["a", "b"] and reports == [0]
    assert gate.resident() == {"a": 1, "b": 1}, "nothing in use was evicted for c"
    release_b.set()
    eventually(lambda: len(served) == 3, "c is served once b is idle")
    assert gate.resident() == {"a": 1, "c": 1}
    release_a.set()
    release_c.set()
    c.join(PATIENCE)


def test_a_model_larger_than_the_whole_budget_is_served_alone():
    gate, loads = admission(2.0, {"small": 1.0, "huge": 5.0})
    release_small, release_huge = threading.Event(), threading.Event()
    served: list = []
    lease_in_thread(gate, "small", release_small, served)
    eventually(lambda: len(served) == 1, "small is in use")
    huge = lease_in_thread(gate, "huge", release_huge, served)
    eventually(lambda: gate.waiting == 1, "huge waits for small")
    release_small.set()
    eventually(lambda: len(served) == 2, "huge is served")
    assert gate.resident() == {"huge": 1}, "alone: the idle small model was evicted for it"
    release_huge.set()
    huge.join(PATIENCE)


def test_a_failed_load_frees_its_place_and_the_next_in_line_is_served():
    def load(name: str):
        if name == "broken":
            raise OSError("no such file")
        return name

    gate = ModelAdmission(1.0, lambda name: 1.0, load)
    with pytest.raises(OSError):
        with gate.lease("broken"):
            pass
    with gate.lease("fine") as model:
        assert model == "fine" and gate.resident() == {"fine": 1}


def test_the_budget_comes_from_the_environment():
    assert model_memory_budget({}) == DEFAULT_BUDGET_MB
    assert model_memory_budget({BUDGET_ENV: " 1500 "}) == 1500.0
    for bad in ("0", "-5", "lots", "nan", "inf"):
        with pytest.raises(ValueError, match=BUDGET_ENV):
            model_memory_budget({BUDGET_ENV: bad})


def test_every_model_of_the_page_is_measured_and_fits_the_default_budget():
    """None is served alone as an over-budget model (which would stall every other)."""
    from core.footprint import FOOTPRINTS
    from core.weights import MODELS

    assert set(FOOTPRINTS) == set(MODELS), "every model is measured (python benchmarks/footprint.py)"
    assert max(f.total(bfloat16=True) for f in FOOTPRINTS.values()) <= DEFAULT_BUDGET_MB


def test_a_model_not_in_the_table_is_estimated_from_its_parameters():
    from core.footprint import FOOTPRINTS, footprint_mb, parameter_mb

    name = "resnext101_32x8d"  # a torchvision classifier the page does not offer
    assert name not in FOOTPRINTS
    parameters = parameter_mb(name)
    assert 330 < parameters < 345, "counted on the meta device, as a loaded model's would be"
    assert footprint_mb(name, bfloat16=False) >= parameters + max(f.peak_pass for f in FOOTPRINTS.values())
    assert footprint_mb(name, bfloat16=True) >= footprint_mb(name, bfloat16=False) + parameters


# --------------------------------------------------------------------------- the page


def tiny(name: str) -> torch.nn.Module:
    """A tiny ResNet that the shelf serves under a real model's name (the name seeds it)."""
    model = tiny_resnet(10, seed=NAMES.index(name)).eval()
    categories = tuple(f"class {i}" for i in range(10))
    model.gradcam_info = ModelInfo(name, "random init (untrained)", False, categories, IMAGENET_MEAN, IMAGENET_STD, input_size=64)
    return model


class Progress:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, fraction, desc=None) -> None:
        self.messages.append(desc)


@pytest.fixture
def explorer():
    from core.scheduler import Completer, NetworkScheduler
    from demo.explore import Explorer

    explorer = Explorer("random")
    explorer.completer.close(PATIENCE)
    explorer.scheduler = NetworkScheduler(1)  # one background slot, which a test can hold to pause the completions
    explorer.completer = Completer(explorer.scheduler)
    loads = Loads(lambda: explorer.shelf.admission.resident(), tiny)
    explorer.shelf = ModelShelf("random", loader=loads, budget_mb=2.0, cost_mb=lambda name: 1.0)
    explorer.loads = loads
    yield explorer
    explorer.completer.close(PATIENCE)


@pytest.fixture
def photo(tmp_path) -> str:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_a_class_picking_more_models_than_fit_is_served_and_its_explanations_pin_none(explorer, photo):
    """Four models at once, two fit: a user holds one in use, the first of the rest is served beside
    it, the others wait and are told so; all are served, never more than two in memory."""
    # A request holds NAMES[0] in use, and the completions are paused: the first student's
    # Explanation holds its model until its completion, so the other two must wait.
    with explorer.scheduler.background(), explorer.shelf.lease(NAMES[0]):
        progress = {name: Progress() for name in NAMES}
        results: dict[str, object] = {}

        def student(name: str) -> None:
            results[name] = explorer.explanation(photo, name, 3, f"session-{name}", progress[name])

        threads = []
        for n, name in enumerate(NAMES[1:]):  # one after another, so that their order in the queue is known
            threads.append(start(student, name))
            eventually(lambda: len(results) == 1 and explorer.shelf.admission.waiting == n, f"{name} is served or queued")
        first, second, third = NAMES[1:]
        told = {name: [m for m in progress[name].messages if "model slot" in m] for name in NAMES[1:]}
        assert told == {first: [], second: [texts.MODEL_SLOT_NEXT], third: [texts.MODEL_SLOT_WAIT.format(ahead=1)]}, "the page says why it waits"
        assert explorer.shelf.admission.resident()[NAMES[0]] == 1, "the model in use was not evicted"
    for thread in threads:
        thread.join(PATIENCE)
    assert sorted(results) == sorted(NAMES[1:]) and all(e.predictions for e in results.values()), "all served"
    assert explorer.completer.join(COMPLETIONS)
    assert max(len(resident) for resident in explorer.loads.in_memory) <= 2, explorer.loads.in_memory

    for explanation in results.values():
        assert isinstance(explanation._twin, TwinOutline) and explanation._model is None, "a cached Explanation keeps only its maps"
        assert all(explanation.drawable(c, layer) for c in explanation.top_classes for layer in (1, 2, 3, 4))
    assert sorted(explorer.loads.live()) == sorted(explorer.shelf.admission.resident()), "no model outlives its eviction"


def test_a_cached_explanation_gets_its_evicted_model_back_for_a_new_pass(explorer, photo):
    first = explorer.explanation(photo, NAMES[0], 3, "s")
    for name in NAMES[1:3]:  # two other models evict the first
        explorer.explanation(photo, name, 3, "s")
    assert explorer.completer.join(COMPLETIONS)
    assert NAMES[0] not in explorer.shelf.admission.resident()
    outside = next(c for c in range(10) if c not in first.top_classes)
    explorer.ready(first, outside, 1)  # a pass: the model comes back through the queue
    assert explorer.loads.order.count(NAMES[0]) == 2
    assert isinstance(first._twin, TwinOutline), "and goes again once the pass is done"
    fresh = explain(tiny(NAMES[0]), Image.open(photo), top_k=3, precision=first.precision)
    np.testing.assert_allclose(first.cam(outside, 1), fresh.cam(outside, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first.guided_backprop(outside), fresh.guided_backprop(outside), rtol=1e-5, atol=1e-9)


def test_an_explanation_that_let_go_of_its_model_draws_what_it_stored_and_runs_no_pass():
    model = tiny(NAMES[0])
    explanation = explain(model, Image.fromarray(np.full((50, 70, 3), 120, np.uint8)), top_k=2)
    top = explanation.top_classes[0]
    before = [explanation.cam(top, layer) for layer in (1, 2, 3, 4)]
    explanation.hold_network(None)
    assert all(np.array_equal(explanation.cam(top, layer), map_) for layer, map_ in zip((1, 2, 3, 4), before))
    assert explanation.stages == ("layer1", "layer2", "layer3", "layer4") and explanation.has_relu
    outside = next(c for c in range(10) if c not in explanation.top_classes)
    with pytest.raises(RuntimeError, match="let go of its model"):
        explanation.cam(outside, 1)
    explanation.hold_network(model)
    assert explanation.cam(outside, 1).shape == (50, 70)
