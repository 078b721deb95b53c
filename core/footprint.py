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
    "resnet50": Footprint(98, 90, 392),
    "resnet101": Footprint(170, 162, 525),
    "resnet152": Footprint(230, 222, 660),
    "wide_resnet50_2": Footprint(263, 255, 496),
    "resnext50_32x4d": Footprint(96, 88, 367),
    "vgg16_bn": Footprint(528, 56, 385),
    "densenet121": Footprint(31, 15, 354),
    "mobilenet_v3_large": Footprint(21, 6, 150),
    "efficientnet_b0": Footprint(20, 13, 262),
    "regnet_y_800mf": Footprint(25, 18, 206),
    "efficientnet_v2_s": Footprint(82, 63, 1050),  # a 768×384 input: its crop is 384
    "convnext_tiny": Footprint(109, 0, 225),
    "swin_t": Footprint(108, 0, 268),
    "vit_b_16": Footprint(330, 0, 145),
    "maxvit_t": Footprint(119, 11, 403),
}

#: For a model not in the table, a pass is taken to cost at least this many times its parameters
#: (resnet50's ratio, the largest among the measured models of 100 MB or more) and at least the
#: largest pass measured: a small network on a large input can need more than a big one.
PASS_PER_PARAMETER = 4.0


def parameter_mb(name: str) -> float:
    """A torchvision architecture's parameters and buffers in MB, built on the meta device: no memory, no weights."""
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers())) / 2**20


def estimated_footprint(parameters: float) -> Footprint:
    """A conservative footprint from the parameters alone (MB): every weight folded, a large pass."""
    largest_pass = max(f.peak_pass for f in FOOTPRINTS.values())
    return Footprint(parameters, parameters, max(largest_pass, PASS_PER_PARAMETER * parameters))


def footprint_mb(name: str, *, bfloat16: bool) -> float:
    """What the model ``name`` costs in memory while used: measured, or estimated from its parameters."""
    footprint = FOOTPRINTS.get(name) or estimated_footprint(parameter_mb(name))
    return footprint.total(bfloat16=bfloat16)
