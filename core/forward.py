"""The staged forward pass that the engine differentiates, and the ReLU rule it backpropagates with.

The user's model is shared by every request, so nothing here touches it: no hooks, no swapped
modules, no flags flipped. Instead each model gets a read-only *twin*: the same ResNet written as
plain functions over tensors derived from the model's parameters, with every eval-mode BatchNorm
folded into the convolution before it. The twin returns the four stage outputs and the logits
in one forward pass, and routes every ReLU through :class:`_RuleReLU`, whose backward follows a
per-pass :class:`ReluRule`. One recorded graph can therefore be differentiated twice: once with
the plain ReLU derivative (for Grad-CAM) and once with the guided rule (for guided backprop).

The perturbation methods and the faithfulness metrics need scores, not gradients: the twin also
runs batches of perturbed inputs (``logits``) or stage outputs (``forward_from``) without a graph.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STAGES = ("layer1", "layer2", "layer3", "layer4")

# Perturbed copies go through the network this many at a time: enough to amortise per-call
# overhead on a CPU, few enough that resnet50 on a 448×224 input stays within a few hundred MB.
BATCH_SIZE = 16


class ReluRule:
    """How ReLUs recorded in one pass send gradients back.

    plain:  ∂L/∂x = g · [x > 0]
    guided: ∂L/∂x = max(g, 0) · [x > 0]   (Springenberg et al., 2015)

    The rule is read at backward time, so a caller flips ``guided`` between two backward passes
    over the same graph. Each pass owns its rule, so concurrent passes never see each other's.
    """

    def __init__(self) -> None:
        self.guided = False


class _RuleReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, rule: ReluRule) -> Tensor:  # type: ignore[override]
        out = torch.relu(x)
        ctx.rule = rule
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        if ctx.rule.guided:
            grad = grad.clamp(min=0)
        return grad * (out > 0), None


@dataclass(frozen=True)
class _Conv:
    """A convolution with its BatchNorm folded in, or a bare convolution."""

    weight: Tensor
    bias: Tensor | None
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str
    dilation: tuple[int, ...]
    groups: int

    def __call__(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> _Conv:
    """Fold eval-mode BatchNorm into the convolution before it.

    With s = γ / √(σ² + ε):  W' = W · s (per output channel),  b' = β + (b − μ) · s.
    Saves one full pass over every activation in both the forward and each backward.
    """
    if conv.padding_mode != "zeros":
        raise TypeError(f"unsupported padding mode {conv.padding_mode!r} in {conv}")
    if bn.running_mean is None or bn.running_var is None:
        raise TypeError(f"{bn} keeps no running statistics, so it cannot be evaluated in eval mode")
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else torch.rsqrt(bn.running_var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(scale)
        conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
        weight = (conv.weight * scale.reshape(-1, 1, 1, 1)).contiguous()
        bias = shift + (conv_bias - bn.running_mean) * scale
    return _Conv(weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


@dataclass(frozen=True)
class _Block:
    """A torchvision BasicBlock or Bottleneck: ReLU between the convolutions, and after the sum."""

    convs: tuple[_Conv, ...]
    shortcut: _Conv | None

    def __call__(self, x: Tensor, relu: Callable[[Tensor], Tensor]) -> Tensor:
        out = x
        for i, conv in enumerate(self.convs):
            out = conv(out)
            if i < len(self.convs) - 1:
                out = relu(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return relu(out + identity)


def _fold_block(block: nn.Module) -> _Block:
    names = ["1", "2", "3"] if hasattr(block, "conv3") else ["1", "2"]
    try:
        convs = tuple(_fold(getattr(block, f"conv{n}"), getattr(block, f"bn{n}")) for n in names)
    except AttributeError as err:
        raise TypeError(
            f"{type(block).__name__} is not a torchvision BasicBlock or Bottleneck "
            "(conv1/bn1, conv2/bn2[, conv3/bn3], downsample)"
        ) from err
    downsample = getattr(block, "downsample", None)
    shortcut = None if downsample is None else _fold(downsample[0], downsample[1])
    return _Block(convs, shortcut)


def _run(blocks: tuple[_Block, ...], x: Tensor, relu: Callable[[Tensor], Tensor]) -> Tensor:
    for block in blocks:
        x = block(x, relu)
    return x


def _fingerprint(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced, moved or written in place."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


class Twin:
    """A read-only, BatchNorm-folded functional copy of a torchvision ResNet.

    ``forward`` always has eval-mode semantics (running statistics), whatever ``model.training``
    says, because an explanation of a single image under batch statistics would be meaningless.
    """

    def __init__(self, model: nn.Module) -> None:
        for name in ("conv1", "bn1", "maxpool", *STAGES, "avgpool", "fc"):
            if not hasattr(model, name):
                raise TypeError(f"{type(model).__name__} is not a ResNet-style network: it has no '{name}'")
        self.fingerprint = _fingerprint(model)
        self.device = model.conv1.weight.device
        self.stem = _fold(model.conv1, model.bn1)
        pool = model.maxpool
        self.maxpool = lambda x: F.max_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode)
        self.stages = tuple(tuple(_fold_block(b) for b in getattr(model, s)) for s in STAGES)
        fc, avgpool = model.fc, model.avgpool
        global_pool = isinstance(avgpool, nn.AdaptiveAvgPool2d) and avgpool.output_size in (1, (1, 1))
        if global_pool and isinstance(fc, nn.Linear):
            # Logits are linear in the spatial mean of layer4, so ∂y_c/∂A4 = W_c / (h·w) everywhere.
            self.fc_weight: Tensor | None = fc.weight.detach()
            fc_bias = fc.bias.detach() if fc.bias is not None else None
            self.head = lambda a4: F.linear(a4.mean((2, 3)), self.fc_weight, fc_bias)
        else:
            self.fc_weight = None
            self.head = lambda a4: fc(torch.flatten(avgpool(a4), 1))

    def forward(self, x: Tensor, rule: ReluRule) -> tuple[list[Tensor], Tensor]:
        """Returns the outputs of layer1..layer4 and the logits, recording a graph for ``rule``."""
        relu = lambda t: _RuleReLU.apply(t, rule)  # noqa: E731
        x = self.maxpool(relu(self.stem(x)))
        stage_activations = []
        for blocks in self.stages:
            x = _run(blocks, x, relu)
            stage_activations.append(x)
        return stage_activations, self.head(x)

    def logits(self, inputs: Tensor) -> Tensor:
        """Logits of a batch of model inputs (n, 3, H, W) → (n, classes) on the CPU; no graph."""
        with torch.no_grad():
            return self._logits_after(-1, self.maxpool(torch.relu(self.stem(inputs.to(self.device)))))

    def forward_from(self, stage_index: int, activations: Tensor) -> Tensor:
        """Logits of a batch of outputs of stage ``stage_index`` (0..3) on the CPU; no graph.

        Runs only the stages after it, then the head: what ablating a channel there changes.
        """
        with torch.no_grad():
            return self._logits_after(stage_index, activations.to(self.device))

    def _logits_after(self, stage_index: int, x: Tensor) -> Tensor:
        """The stages after ``stage_index`` (−1: after the stem, i.e. all), the head, plain ReLUs."""
        for blocks in self.stages[stage_index + 1 :]:
            x = _run(blocks, x, torch.relu)
        return self.head(x).cpu()

    def closed_form_layer4_gradient(self, class_idx: int, shape: torch.Size) -> Tensor | None:
        """∂y_c/∂A4 without a backward pass, or None when the head is not avgpool + Linear."""
        if self.fc_weight is None:
            return None
        channels, height, width = shape
        row = self.fc_weight[class_idx].detach().to("cpu", torch.float32) / (height * width)
        return row.reshape(channels, 1, 1).expand(channels, height, width)


_twins: "weakref.WeakKeyDictionary[nn.Module, Twin]" = weakref.WeakKeyDictionary()
_twins_lock = threading.Lock()


def twin_for(model: nn.Module) -> Twin:
    """The model's twin, built once and rebuilt only if the model's tensors changed since."""
    with _twins_lock:
        twin = _twins.get(model)
        if twin is None or twin.fingerprint != _fingerprint(model):
            twin = Twin(model)
            _twins[model] = twin
        return twin
