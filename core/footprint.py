"""What a model costs in memory while it is used, in MB: the figures a memory budget counts.

A model in use holds three things:

* its parameters and buffers;
* its twins (:mod:`core.forward`). The float32 twin shares the model's storage; the bfloat16
  twin folds BatchNorm into its convolutions, and the folded weights are new tensors;
* one pass at a time: its stage activations, the autograd graph of the top-k's backward passes
  and torch's scratch memory, at the widest input the page sends.

:data:`FOOTPRINTS` holds them measured, for untrained weights on a CPU, by::

    python benchmarks/footprint.py

A model not in the table (a new architecture) is estimated from its parameter count.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torchvision


class Footprint(NamedTuple):
    """One model's memory in MB: parameters, the folded twin's new tensors, and the peak of a pass."""

    parameters: float
    folded_twin: float
    peak_pass: float

    def total(self, *, bfloat16: bool) -> float:
        """All of it; the folded twin exists only where bfloat16 is offered (native hardware)."""
        return self.parameters + self.peak_pass + (self.folded_twin if bfloat16 else 0.0)


#: Measured by ``python benchmarks/footprint.py`` (torch 2.14.1, torchvision 0.29.1, 2-core x86 CPU).
FOOTPRINTS: dict[str, Footprint] = {
    "resnet18": Footprint(45, 43, 136),
    "resnet34": Footprint(83, 81, 159),
}

#: For a model not in the table: the largest ratios the table has of pass to parameters and of
#: folded twin to parameters, plus the smallest pass it has (a tiny network still needs scratch).
PASS_PER_PARAMETER_MB = 3.0
FOLDED_PER_PARAMETER_MB = 1.0
SMALLEST_PASS_MB = 100.0


def parameter_mb(name: str) -> float:
    """A torchvision architecture's parameters and buffers in MB, built on the meta device: no memory, no weights."""
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers())) / 2**20


def estimated_footprint(parameters: float) -> Footprint:
    """A conservative footprint from the parameters alone (MB)."""
    return Footprint(parameters, FOLDED_PER_PARAMETER_MB * parameters, max(SMALLEST_PASS_MB, PASS_PER_PARAMETER_MB * parameters))


def footprint_mb(name: str, *, bfloat16: bool) -> float:
    """What the model ``name`` costs in memory while used: measured, or estimated from its parameters."""
    footprint = FOOTPRINTS.get(name) or estimated_footprint(parameter_mb(name))
    return footprint.total(bfloat16=bfloat16)
