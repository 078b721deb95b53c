"""The passes through a model's twin behind one Explanation, and the gradients they leave.

A pass records one forward graph through the twin (see :mod:`core.forward`), keeps the four
stage outputs and the logits of the first one, and then takes, for each class it is asked for,

* ∂y_c/∂A at layer1..layer3 with the plain ReLU derivative (layer4 needs no backward pass when
  the head is average pool + Linear: ∂y_c/∂A4 is the fc row spread over the grid), and
* ∂y_c/∂x at the input with the guided ReLU rule,

then frees the graph. The k backward passes run one class after another over the retained
graph: on a 2-core CPU that measured as fast as ``is_grads_batched`` for resnet50 and 17% faster
for resnet18. Gradients come from ``torch.autograd.grad`` on tensors held here, so no parameter
ever gets a ``.grad``.

A first view asks for little, and the rest of the top-k comes later, from whichever thread
needs it first or from a background completion. Passes therefore run one at a time, each class
is computed once, and every class a pass stores is announced at once, so that a view of one
class can start while the same pass still works on the others.

Score-CAM and Ablation-CAM need scores of perturbed copies instead: batches through the twin
without a graph, run once per (class, stage, method, cap) and kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from core.forward import ReluRule, Twin, tracer_waiting
from core.methods import ABLATION_CHANNELS, SCORECAM_CHANNELS, ablation_drops, ablationcam, linear_head_drops, scorecam

#: Chooses a pass's (plain, guided) classes. Called after the forward pass, so that a first pass
#: can pick its classes from its own predictions.
Select = Callable[[], tuple[list[int], list[int]]]
#: Called by a pass before its forward pass, before each backward pass and at each rectifier
#: (every few milliseconds), with a function that says whether a thread waits for this very pass
#: (or for the tracing gate that its forward pass holds). A background pass waits there while
#: someone else's view needs the cores (core.scheduler.NetworkScheduler.yield_to_first_views).
Pause = Callable[[Callable[[], bool]], None]


def no_pause(waited_on: Callable[[], bool]) -> None:
    """A pass that nobody else may interrupt: a first view's, or one someone waits for."""


@dataclass
class ClassGradients:
    """What one class needs from the network: plain gradients per stage, guided input gradient."""

    stages: list[Tensor] | None = None  # ∂y_c/∂A for layer1..layer4, each (C, h, w), on the CPU
    guided: Tensor | None = None  # ∂y_c/∂x under the guided rule, (3, h_in, w_in)


class GradientStore:
    """The forward record and per-class gradients of one (image, model) pair, filled pass by pass,
    and the maps that need batches through the twin without a graph (Score-CAM, Ablation-CAM).

    Thread-safe: concurrent requests for a missing class run one pass, and a class that some
    pass has stored is read without waiting for that pass to end.
    """

    def __init__(self, twin: Twin, input_tensor: Tensor, precision: str) -> None:
        self.twin = twin
        self.input_tensor = input_tensor
        self.precision = precision
        self.stage_activations: list[Tensor] = []  # of the first pass, (C, h, w) each, on the CPU
        self.logits: Tensor = torch.empty(0)
        self.classes: dict[int, ClassGradients] = {}
        self._pass_lock = threading.Lock()  # one pass at a time
        self._waiters = 0  # threads waiting for _pass_lock: a pausing pass must not keep them waiting
        self._waiters_lock = threading.Lock()
        # Notified each time a pass stores a class, so that a view can use the first class of a
        # long pass before the pass (and its hold on _pass_lock) ends.
        self._stored = threading.Condition()
        # Results of passes without a graph: perturbation maps, faithfulness. Apart from the
        # gradient passes so a slow Score-CAM never holds one up; re-entrant because a
        # faithfulness score may need a Score-CAM map first.
        self._once_lock = threading.RLock()
        self._results: dict[tuple, Any] = {}

    def first_pass(self, select: Select, *, graph: bool = True) -> None:
        """The pass that records the stage activations and logits; ``select`` reads the logits.
        Without a ``graph`` it is the forward alone (select must then choose no class): less
        than half the time of one that records a graph and takes a guided backward pass."""
        with self._pass_lock:
            self.run_pass(select, graph=graph)

    def run_pass(self, select: Select, *, graph: bool = True, pause: Pause = no_pause) -> None:
        """One forward pass, then the selected classes' backward passes, class by class, so that
        each class is whole as early as it can be: guided first, which is all that a first view's
        class lacks to fill the page's five panels, then plain. The graph dies on return.

        The pass calls ``pause(self.waited_on)`` before each of those steps and within each
        backward pass (see :data:`Pause`). The caller holds the pass lock.
        """
        twin = self.twin
        pause(self.waited_on)
        x = self.input_tensor.detach().to(twin.device).requires_grad_(graph)
        rule = ReluRule(lambda: pause(lambda: self.waited_on() or tracer_waiting()))
        fast = self.precision == "bfloat16"
        with torch.set_grad_enabled(graph), torch.autocast(twin.device.type, dtype=torch.bfloat16, enabled=fast):
            stage_activations, logits = twin.forward(x, rule)
            if not self.stage_activations:
                self.stage_activations = [a.detach()[0].float().cpu() for a in stage_activations]
                self.logits = logits.detach()[0].float().cpu()
            plain, guided = select()
            if (plain or guided) and not graph:
                raise RuntimeError("a pass without a graph takes no backward pass")
            # Without a closed form, layer4 needs a backward pass like the other stages.
            targets = stage_activations if twin.fc_weight is None else stage_activations[:3]
            steps: list[tuple[int, bool]] = []  # (class, guided rule): the likeliest class first, as the page shows it
            for c in sorted({*plain, *guided}, key=lambda c: float(self.logits[c]), reverse=True):
                steps += [(c, True)] * (c in guided) + [(c, False)] * (c in plain)
            for n, (c, guided_rule) in enumerate(steps):
                pause(self.waited_on)
                keep = n < len(steps) - 1
                rule.guided = guided_rule
                if guided_rule:
                    (grad,) = torch.autograd.grad(logits[0, c], x, retain_graph=keep)
                    self.store(c, guided=grad[0].float().cpu())
                    continue
                grads = torch.autograd.grad(logits[0, c], targets, retain_graph=keep)
                stages = [g[0].float().cpu() for g in grads]
                if twin.fc_weight is not None:
                    stages.append(twin.closed_form_layer4_gradient(c, stage_activations[3].shape[1:]))
                self.store(c, stages=stages)

    def store(self, class_idx: int, *, stages: list[Tensor] | None = None, guided: Tensor | None = None) -> None:
        entry = self._entry(class_idx)
        if stages is not None:
            entry.stages = stages
        if guided is not None:
            entry.guided = guided
        with self._stored:
            self._stored.notify_all()

    def _entry(self, class_idx: int) -> ClassGradients:
        return self.classes.setdefault(class_idx, ClassGradients())

    def stored(self, class_idx: int, *, stages: bool = False, guided: bool = False) -> bool:
        """Whether the class's stage (and/or guided) gradients are there, without running or waiting for a pass."""
        entry = self.classes.get(class_idx)
        return entry is not None and (not stages or entry.stages is not None) and (not guided or entry.guided is not None)

    def wait_until(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Waits until condition() holds, checked each time a pass stores a class; False on timeout."""
        with self._stored:
            return self._stored.wait_for(condition, timeout)

    def waited_on(self) -> bool:
        """Whether a thread waits for the running pass to end (for its lock)."""
        return self._waiters > 0

    def ensure(self, class_idx: int, batch: list[int], *, stages: bool = False, guided: bool = False, pause: Pause = no_pause) -> ClassGradients:
        """The class's gradients, computing what is missing for every class of ``batch`` in one pass
        (which calls ``pause``: see :meth:`run_pass`).

        ``batch`` holds ``class_idx``: an Explanation passes its whole top-k for a top-k class.
        """
        if not self._pass_lock.acquire(blocking=False):
            with self._waiters_lock:
                self._waiters += 1
            try:
                # A pass that stored this class may still hold the lock for others: check while waiting for it.
                while not self._pass_lock.acquire(timeout=0.02):
                    if self.stored(class_idx, stages=stages, guided=guided):
                        return self.classes[class_idx]
            finally:
                with self._waiters_lock:
                    self._waiters -= 1
        try:
            entry = self._entry(class_idx)
            if not self.stored(class_idx, stages=stages, guided=guided):
                self.run_pass(lambda: (
                    [c for c in batch if self._entry(c).stages is None],
                    [c for c in batch if self._entry(c).guided is None],
                ), pause=pause)
            return entry
        finally:
            self._pass_lock.release()

    def once(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """compute() once per key, whatever the number of threads asking."""
        with self._once_lock:
            if key not in self._results:
                self._results[key] = compute()
            return self._results[key]

    def perturbation_cam(self, class_idx: int, index: int, method: str, channels: int | None) -> Tensor:
        """Score-CAM or Ablation-CAM through the twin, computed once per (class, stage, method, cap)."""
        twin = self.twin
        activations = self.stage_activations[index]
        score = float(self.logits[class_idx])
        if method == "ablationcam" and index == 3 and twin.fc_weight is not None:
            class_weights = twin.fc_weight[class_idx].to("cpu", torch.float32)
            return ablationcam(activations, linear_head_drops(activations, class_weights), score)  # free: no cache
        if channels is None:
            channels = SCORECAM_CHANNELS if method == "scorecam" else ABLATION_CHANNELS
        cap = min(int(channels), activations.shape[0])  # so that every cap ≥ C shares one entry

        def compute() -> Tensor:
            if method == "scorecam":
                return scorecam(activations, self.input_tensor, lambda batch: twin.logits(batch)[:, class_idx], cap)
            drops = ablation_drops(
                activations, score, lambda batch: twin.forward_from(index, batch, self.input_tensor)[:, class_idx], cap
            )
            return ablationcam(activations, drops, score)

        return self.once((method, class_idx, index, cap), compute)
