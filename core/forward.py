"""The forward pass that the engine differentiates, for any torchvision classifier.

The user's model is shared by every request, so nothing here touches it: no hooks, no swapped
modules, no flags flipped. Each model instead gets a read-only *twin*, built once:

1. a private copy of the module tree that shares the model's parameter storage (no memory is
   copied), with every parameter detached (so nothing can write ``.grad``), no hooks (so the
   user's hooks never fire), and eval mode (running statistics, no dropout);
2. traced with torch.fx (torchvision's ``NodePathTracer``, which names every node after the
   module it runs in, so a module path such as ``features.5`` finds the node of its output);
3. rewritten: in-place ops made out-of-place (so no later op can overwrite a returned stage),
   every rectifier-like activation, module or functional, routed through :class:`_Rectifier`,
   whose backward follows a per-pass :class:`ReluRule`, and, for the fast twin only, eval-mode
   BatchNorm folded into the convolution before it (``fuse_conv_bn_weights``) and inputs taken
   in NHWC memory order;
4. cut so that it returns the four stage outputs behind the layer slider, as (n, C, h, w)
   grids, and the logits.

One recorded graph can therefore be differentiated twice: once with the plain derivative
(Grad-CAM) and once with the guided rule (guided backprop).

A family needs only data (:data:`FAMILIES`): where its stages live and how its outputs are laid
out. The stages themselves are found with one dummy pass: at each of the four deepest grid sizes
the last child of the family's trunk with that grid, as torchvision's detection backbones and
timm's ``feature_info`` choose them. Vision transformers have no grid to shrink: their stages are
the blocks at a quarter, half and three quarters of the depth, and the last block's first
LayerNorm (see :func:`_transformer_stage_paths`).

The perturbation methods and the faithfulness metrics need scores, not gradients: the twin also
runs batches of perturbed inputs (``logits``) or stage outputs (``forward_from``) without a graph.
"""

from __future__ import annotations

import copy
import math
import operator
import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torchvision.models.feature_extraction import NodePathTracer

STAGES = ("layer1", "layer2", "layer3", "layer4")

# Perturbed copies go through the network this many at a time: enough to amortise per-call
# overhead on a CPU, few enough that resnet50 on a 448×224 input stays within a few hundred MB.
BATCH_SIZE = 16


# --------------------------------------------------------------------------- families


@dataclass(frozen=True)
class Family:
    """What the twin needs to know about an architecture: data, not code.

    trunk:       the module whose children hold the stages ("" is the model itself).
    layout:      how stage outputs are laid out: "nchw"; "nhwc" (Swin); "tokens", (n, 1 + h·w, C)
                 with a leading class token (ViT).
    fixed_input: the side of the only square input size the model accepts, or None.
    """

    trunk: str
    layout: str = "nchw"
    fixed_input: int | None = None


FAMILIES: dict[type[nn.Module], Family] = {
    torchvision.models.ResNet: Family(""),
    torchvision.models.VGG: Family("features"),
    torchvision.models.DenseNet: Family("features"),
    torchvision.models.MobileNetV2: Family("features"),
    torchvision.models.MobileNetV3: Family("features"),
    torchvision.models.EfficientNet: Family("features"),
    torchvision.models.RegNet: Family("trunk_output"),
    torchvision.models.ConvNeXt: Family("features"),
    torchvision.models.SwinTransformer: Family("features", layout="nhwc"),
    torchvision.models.MaxVit: Family("blocks", fixed_input=224),
    torchvision.models.VisionTransformer: Family("encoder.layers", layout="tokens", fixed_input=224),
}


def family_of(model: nn.Module) -> Family:
    for cls in type(model).__mro__:
        if cls in FAMILIES:
            family = FAMILIES[cls]
            if isinstance(model, torchvision.models.VisionTransformer):
                return Family(family.trunk, family.layout, fixed_input=model.image_size)
            return family
    names = ", ".join(sorted(cls.__name__ for cls in FAMILIES))
    raise TypeError(f"{type(model).__name__} is not a supported architecture; supported families: {names}")


# --------------------------------------------------------------------------- the rectifier rule


class ReluRule:
    """How rectifiers recorded in one pass send gradients back.

    plain:  ∂L/∂x = f'(x) · g
    guided: ∂L/∂x = f'(x) · max(g, 0)

    For ReLU, f'(x) = [x > 0] and the guided rule is Springenberg et al.'s (2015). We extend it
    to every rectifier-like activation (ReLU6, GELU, SiLU, Hardswish): keep the local derivative,
    pass back only positive incoming gradient. Gates (the sigmoids of squeeze-and-excitation,
    softmax) keep their plain derivative.

    The rule is read at backward time, so a caller flips ``guided`` between two backward passes
    over the same graph. Each pass owns its rule, so concurrent passes never see each other's.
    ``pause`` is called at each rectifier, forward and backward: a background pass waits there
    while a first view needs the cores. Its forward pass holds the tracing gate meanwhile, so a
    pause must end once :func:`tracer_waiting`.
    """

    def __init__(self, pause: Callable[[], None] = lambda: None) -> None:
        self.guided = False
        self.pause = pause


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "relu6": F.relu6,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "hardswish": F.hardswish,
}


class _Rectifier(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, rule: ReluRule, kind: str) -> Tensor:  # type: ignore[override]
        rule.pause()
        out = _ACTIVATIONS[kind](x)
        ctx.rule, ctx.kind = rule, kind
        ctx.save_for_backward(out if kind == "relu" else x)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        ctx.rule.pause()
        (saved,) = ctx.saved_tensors
        if ctx.rule.guided:
            grad = grad.clamp(min=0)
        if ctx.kind == "relu":
            return grad * (saved > 0), None, None
        # The other activations are elementwise, so their vector-Jacobian product is f'(x)·grad.
        with torch.enable_grad():
            x = saved.detach().requires_grad_(True)
            (grad_in,) = torch.autograd.grad(_ACTIVATIONS[ctx.kind](x), x, grad)
        return grad_in, None, None


def rectify(x: Tensor, rule: ReluRule, kind: str) -> Tensor:
    return _Rectifier.apply(x, rule, kind)


torch.fx.wrap("rectify")

_ACTIVATION_MODULES: dict[type[nn.Module], Callable[[nn.Module], str]] = {
    nn.ReLU: lambda m: "relu",
    nn.ReLU6: lambda m: "relu6",
    nn.GELU: lambda m: "gelu_tanh" if m.approximate == "tanh" else "gelu",
    nn.SiLU: lambda m: "silu",
    nn.Hardswish: lambda m: "hardswish",
}
_ACTIVATION_FUNCTIONS: dict[Any, str] = {
    torch.relu: "relu",
    torch.relu_: "relu",
    F.relu: "relu",
    F.relu_: "relu",
    F.relu6: "relu6",
    F.silu: "silu",
    F.hardswish: "hardswish",
}
_ACTIVATION_METHODS = {"relu": "relu", "relu_": "relu"}
_OUT_OF_PLACE = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul}
_OUT_OF_PLACE_METHODS = {"add_": "add", "sub_": "sub", "mul_": "mul", "div_": "div", "clamp_": "clamp"}


# --------------------------------------------------------------------------- the private copy


def _private_copy(module: nn.Module) -> nn.Module:
    """A hook-free, eval-mode copy of the module tree whose parameters share the model's storage.

    The parameters are detached, so no pass through the copy can write ``.grad`` into the
    model's; hooks and training flags live in each module's ``__dict__``, which is the copy's own.
    """
    clone = copy.copy(module)
    clone.__dict__ = {
        key: OrderedDict() if key.endswith("hooks") and isinstance(value, dict) else value
        for key, value in module.__dict__.items()
    }
    clone._parameters = {
        key: None if p is None else nn.Parameter(p.detach(), requires_grad=False) for key, p in module._parameters.items()
    }
    clone._buffers = dict(module._buffers)
    clone._modules = {key: None if m is None else _private_copy(m) for key, m in module._modules.items()}
    clone.training = False
    if getattr(clone, "inplace", False) is True:
        clone.inplace = False
    return clone


class _TracingGate:
    """Keeps twins from running while one is traced.

    torch.fx's tracer patches ``nn.Module.__call__`` for the whole process while it traces, so a
    twin running in another thread at that moment fails ("module is not installed as a
    submodule"). Runs share the gate; a trace waits for the runs in flight, holds new ones back
    (so a stream of requests cannot starve it), and takes the tracer's milliseconds alone.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._running = 0
        self._tracers = 0  # waiting or tracing

    @contextmanager
    def run(self):
        with self._condition:
            self._condition.wait_for(lambda: self._tracers == 0)
            self._running += 1
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    def tracer_waiting(self) -> bool:
        with self._condition:
            return self._tracers > 0

    @contextmanager
    def trace(self):
        with self._condition:
            self._tracers += 1
            self._condition.wait_for(lambda: self._running == 0)
        try:
            yield
        finally:
            with self._condition:
                self._tracers -= 1
                self._condition.notify_all()


_gate = _TracingGate()
#: Whether a trace waits for the twins running now (a paused pass must go on: see ReluRule).
tracer_waiting = _gate.tracer_waiting
_trace_lock = threading.Lock()  # one tracer at a time: each patches and restores the same globals


def _trace(model: nn.Module) -> tuple[fx.GraphModule, dict[fx.Node, str]]:
    """The copy's eval-mode graph, and each node's module path with the op appended.

    torchvision's feature extractor keeps its ``torchvision.ops`` modules as leaves, but those
    include Conv2dNormActivation, SqueezeExcitation and MLP, whose activations (and BatchNorms)
    the twin must see: so every module is traced through, and only ``torch.nn`` layers are leaves.
    """
    tracer = NodePathTracer(autowrap_modules=(math, torchvision.ops))
    with _trace_lock, _gate.trace():
        graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, type(model).__name__), dict(tracer.node_to_qualname)


def _output_node(qualnames: dict[fx.Node, str], module_path: str) -> fx.Node:
    """The node whose value the module at ``module_path`` returns: the last one run inside it.

    A leaf module is its own call_module node, whose target is the module path. Its node *name*
    may differ (the tracer strips and renumbers a trailing "_1": ViT's ``ln_1`` is named ``ln``
    and its ``ln_2`` is named ``ln_1``), so leaves are found by target, containers by prefix.
    """
    calls = [n for n in qualnames if n.op == "call_module" and n.target == module_path]
    if calls:
        return calls[-1]
    inside = [n for n, name in qualnames.items() if module_path == "" or name.startswith(module_path + ".")]
    if not inside:
        raise TypeError(f"module {module_path!r} runs no operation in the traced model")
    return inside[-1]


# --------------------------------------------------------------------------- rewriting the graph


def _fuse(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``fuse_conv_bn_eval``, with the folded weights computed in float64 and rounded once.

    W' = W · γ/√(σ² + ε),  b' = β + (b − μ) · γ/√(σ² + ε). Folding in float32 rounds twice, and
    those errors, compounded over a ResNet-50's depth, moved layer1 gradients by 1e-4 of their scale.
    """
    fused = copy.copy(conv)
    fused.__dict__ = dict(conv.__dict__)
    weight, bias = torch.nn.utils.fuse_conv_bn_weights(
        conv.weight.double(),
        None if conv.bias is None else conv.bias.double(),
        bn.running_mean.double(),
        bn.running_var.double(),
        bn.eps,
        None if bn.weight is None else bn.weight.double(),
        None if bn.bias is None else bn.bias.double(),
    )
    dtype = conv.weight.dtype
    fused._parameters = {
        "weight": nn.Parameter(weight.detach().to(dtype), requires_grad=False),
        "bias": nn.Parameter(bias.detach().to(dtype), requires_grad=False),
    }
    return fused


def _fold_batchnorms(gm: fx.GraphModule) -> None:
    """Fold each eval-mode BatchNorm2d into the convolution whose only user it is."""
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        conv_node = node.args[0]
        if not (
            isinstance(conv_node, fx.Node)
            and conv_node.op == "call_module"
            and isinstance(modules[conv_node.target], nn.Conv2d)
            and len(conv_node.users) == 1
            and calls[conv_node.target] == 1
            and modules[node.target].track_running_stats
        ):
            continue  # e.g. DenseNet's BatchNorms come before their convolution: they stay
        fused = _fuse(modules[conv_node.target], modules[node.target])
        parent, _, name = conv_node.target.rpartition(".")
        setattr(gm.get_submodule(parent), name, fused)
        node.replace_all_uses_with(conv_node)
        gm.graph.erase_node(node)


def _route_activations(gm: fx.GraphModule, rule: fx.Node) -> int:
    """Send every rectifier through :func:`rectify` and make in-place ops out-of-place.

    Returns how many of them are ReLUs (the UI says when a model has none). Nodes are rewritten
    in place so that the module paths found before still name them.
    """
    modules = dict(gm.named_modules())
    relus = 0
    for node in gm.graph.nodes:
        kind = None
        if node.op == "call_module" and type(modules[node.target]) in _ACTIVATION_MODULES:
            kind = _ACTIVATION_MODULES[type(modules[node.target])](modules[node.target])
        elif node.op == "call_function" and node.target in _ACTIVATION_FUNCTIONS:
            kind = _ACTIVATION_FUNCTIONS[node.target]
        elif node.op == "call_function" and node.target is F.gelu:
            kind = "gelu_tanh" if node.kwargs.get("approximate", "none") == "tanh" else "gelu"
        elif node.op == "call_method" and node.target in _ACTIVATION_METHODS:
            kind = _ACTIVATION_METHODS[node.target]
        elif node.op == "call_function" and node.target in _OUT_OF_PLACE:
            node.target = _OUT_OF_PLACE[node.target]
        elif node.op == "call_method" and node.target in _OUT_OF_PLACE_METHODS:
            node.target = _OUT_OF_PLACE_METHODS[node.target]
        elif node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
        if kind is not None:
            node.op, node.target, node.args, node.kwargs = "call_function", rectify, (node.args[0], rule, kind), {}
            relus += kind == "relu"
    return relus


def _grid_of(shape: Sequence[int], layout: str) -> tuple[int, int] | None:
    if layout == "tokens":
        side = math.isqrt(shape[1] - 1) if len(shape) == 3 and shape[1] > 1 else 0
        return (side, side) if side * side == shape[1] - 1 else None
    if len(shape) != 4:
        return None
    return tuple(shape[1:3]) if layout == "nhwc" else tuple(shape[2:])


def to_grid(x: Tensor, layout: str) -> Tensor:
    """A stage output as an (n, C, h, w) grid: class token dropped, tokens or NHWC reshaped."""
    if layout == "nhwc":
        return x.permute(0, 3, 1, 2)
    side = math.isqrt(x.shape[1] - 1)
    return x[:, 1:].transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)


def from_grid(grid: Tensor, original: Tensor, layout: str) -> Tensor:
    """The inverse of :func:`to_grid`; the class token comes from ``original``."""
    if layout == "nhwc":
        return grid.permute(0, 2, 3, 1)
    tokens = grid.flatten(2).transpose(1, 2)
    return torch.cat([original[:, :1].expand(grid.shape[0], -1, -1), tokens], dim=1)


torch.fx.wrap("to_grid")
torch.fx.wrap("from_grid")


def _insert_grid(graph: fx.Graph, stage: fx.Node, layout: str) -> fx.Node:
    """Put the grid on the path to the logits, so gradients taken at it are the grid's own."""
    if layout == "nchw":
        return stage
    users = list(stage.users)
    with graph.inserting_after(stage):
        grid = graph.call_function(to_grid, (stage, layout))
    with graph.inserting_after(grid):
        rebuilt = graph.call_function(from_grid, (grid, stage, layout))
    for user in users:
        user.replace_input_with(stage, rebuilt)
    return grid


def _stage_paths(family: Family, model: nn.Module, qualnames: dict[fx.Node, str], shapes: dict[fx.Node, Any]) -> tuple[str, ...]:
    trunk = model.get_submodule(family.trunk)
    prefix = f"{family.trunk}." if family.trunk else ""
    children = [f"{prefix}{name}" for name, _ in trunk.named_children()]
    if family.layout == "tokens":
        return _transformer_stage_paths(children)
    grids: list[tuple[str, tuple[int, int]]] = []
    for path in children:
        shape = shapes.get(_output_node(qualnames, path)) if _runs(qualnames, path) else None
        grid = None if shape is None else _grid_of(shape, family.layout)
        if grid is not None and grid != (1, 1):  # a 1×1 output is the head's pooling, not a stage
            grids.append((path, grid))
    last_at: dict[tuple[int, int], str] = {}
    for path, grid in grids:
        last_at.pop(grid, None)
        last_at[grid] = path  # insertion order follows depth, so dicts keep grids shallow → deep
    if len(last_at) < 4:
        raise TypeError(f"{type(model).__name__} has {len(last_at)} downsampling stages in {family.trunk or 'the model'}; 4 are needed")
    return tuple(list(last_at.values())[-4:])


def _runs(qualnames: dict[fx.Node, str], path: str) -> bool:
    return any((n.op == "call_module" and n.target == path) or name.startswith(path + ".") for n, name in qualnames.items())


def _transformer_stage_paths(blocks: list[str]) -> tuple[str, ...]:
    """Blocks at a quarter, half and three quarters of the depth, then the last block's ``ln_1``.

    Only the class token reaches a ViT's head, so at the last block's output (and its ``ln_2``)
    the gradient on every patch token is exactly zero and Grad-CAM would be blank. The last
    block's first LayerNorm feeds self-attention, which mixes the patch tokens into the class
    token, so its gradient is not zero: that is the deepest place with a class-specific map.
    """
    depth = len(blocks)
    quarters = [blocks[max(0, depth * q // 4 - 1)] for q in (1, 2, 3)]
    return (*quarters, f"{blocks[-1]}.ln_1")


def _linear_head(stage: fx.Node, gm: fx.GraphModule, layout: str) -> nn.Linear | None:
    """The Linear layer when all that follows the last stage is global average pooling and it.

    Then y = W · mean(A) + b, so ∂y_c/∂A = W_c / (h·w) at every position: no backward needed.
    """
    if layout != "nchw":
        return None
    modules = dict(gm.named_modules())
    node, pooled = stage, False
    while True:
        users = list(node.users)
        if len(users) != 1:
            return None
        node = users[0]
        module = modules.get(node.target) if node.op == "call_module" else None
        if node.op == "output":
            return None
        if isinstance(module, nn.Linear):
            return module if pooled and list(node.users)[0].op == "output" else None
        if isinstance(module, nn.AdaptiveAvgPool2d) or node.target is F.adaptive_avg_pool2d:
            size = module.output_size if module is not None else node.args[1]
            if size not in (1, (1, 1)):
                return None
            pooled = True
        elif not (
            isinstance(module, (nn.Flatten, nn.Dropout, nn.Identity))
            or node.target in (torch.flatten, F.dropout)
            or (node.op == "call_method" and node.target == "flatten")
        ):
            return None


def _subgraph(graph: fx.Graph, inputs: Sequence[fx.Node], outputs: Sequence[fx.Node]) -> fx.Graph:
    """The part of ``graph`` that computes ``outputs`` from ``inputs`` (each a new placeholder)."""
    needed: set[fx.Node] = set()
    stack = list(outputs)
    while stack:
        node = stack.pop()
        if node in needed or node in inputs:
            continue
        if node.op == "placeholder":
            raise ValueError(f"{node.name} is needed but is not an input of the subgraph")
        needed.add(node)
        stack.extend(node.all_input_nodes)
    sub = fx.Graph()
    env = {node: sub.placeholder(node.name) for node in inputs}
    for node in graph.nodes:
        if node in needed:
            env[node] = sub.node_copy(node, lambda n: env[n])
    sub.output(tuple(env[n] for n in outputs))
    return sub


# --------------------------------------------------------------------------- the twin


def _fingerprint(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced, moved or written in place."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


class Twin:
    """A read-only, traced copy of a torchvision classifier.

    fold=True makes the fast twin: BatchNorm folded into the convolutions (about 30% faster on a
    ResNet-50) and inputs in NHWC memory order. Both round differently, and through a deep network
    the ReLUs whose input is near zero then flip: folding moved layer1 Grad-CAM maps of a ResNet-50
    by up to 6e-4 of their scale. So the exact (float32) twin keeps the model's own arithmetic.

    ``forward`` always has eval-mode semantics (running statistics), whatever ``model.training``
    says, because an explanation of a single image under batch statistics would be meaningless.

    stages:      the module path behind each slider position, e.g. ("layer1", …) or ("features.1", …)
    fixed_input: the side of the only input size the model takes, or None
    fc_weight:   the head's Linear weight when layer4's gradient has the closed form, else None
    relus:       how many ReLUs the network runs (0 for a GELU, SiLU or Hardswish network)
    """

    def __init__(self, model: nn.Module, input_side: int = 224, *, fold: bool = False) -> None:
        family = family_of(model)
        self.fingerprint = _fingerprint(model)
        self.device = next(model.parameters()).device
        self.layout = family.layout
        self.fixed_input = family.fixed_input
        self.fast = fold
        private = _private_copy(model)
        gm, qualnames = _trace(private)
        side = family.fixed_input or input_side
        with _gate.run():
            ShapeProp(gm).propagate(torch.zeros(1, 3, side, side, device=self.device))
        shapes = {n: n.meta["tensor_meta"].shape for n in gm.graph.nodes if hasattr(n.meta.get("tensor_meta"), "shape")}
        self.stages = _stage_paths(family, private, qualnames, shapes)
        stage_nodes = [_output_node(qualnames, path) for path in self.stages]
        self.grids = tuple(_grid_of(shapes[n], family.layout) for n in stage_nodes)
        head = _linear_head(stage_nodes[3], gm, family.layout)
        self.fc_weight: Tensor | None = None if head is None else head.weight.detach()

        graph = gm.graph
        (x,) = [n for n in graph.nodes if n.op == "placeholder"]
        (output,) = [n for n in graph.nodes if n.op == "output"]
        logits = output.args[0]
        with graph.inserting_after(x):
            rule = graph.placeholder("rule")
        self.relus = _route_activations(gm, rule)
        if fold:
            _fold_batchnorms(gm)
        grids = [_insert_grid(graph, node, family.layout) for node in stage_nodes]
        self._graph, self._root, self._x, self._rule, self._grids, self._logits = graph, gm, x, rule, grids, logits
        self._module = self._graph_module([x, rule], [*grids, logits])
        self._tails: dict[int, tuple[fx.GraphModule, fx.GraphModule | None]] = {}
        self._tails_lock = threading.Lock()

    def _graph_module(self, inputs: Sequence[fx.Node], outputs: Sequence[fx.Node]) -> fx.GraphModule:
        sub = _subgraph(self._graph, inputs, outputs)
        module = fx.GraphModule(self._root, sub)
        module.eval()
        return module

    def forward(self, x: Tensor, rule: ReluRule) -> tuple[list[Tensor], Tensor]:
        """The four stage grids (n, C, h, w) and the logits, recording a graph for ``rule``."""
        with _gate.run():
            *grids, logits = self._module(self._arranged(x), rule)
        return grids, logits

    def _arranged(self, x: Tensor) -> Tensor:
        """The fast twin takes image batches in NHWC memory order, which oneDNN's convolutions run
        fastest in: a resnet50 forward and input backward at 224×448 in bfloat16 took 96 ms instead
        of 164 (float32: 216 instead of 224, and layer1 maps moved by 7e-4 of their scale, as with
        folding). The weights stay as they are: the exact twin's are the model's own storage."""
        return x.contiguous(memory_format=torch.channels_last) if self.fast and x.dim() == 4 else x

    def logits(self, inputs: Tensor) -> Tensor:
        """Logits of a batch of model inputs (n, 3, H, W) → (n, classes) on the CPU; no graph."""
        with torch.no_grad(), _gate.run():
            return self._module(self._arranged(inputs.to(self.device)), ReluRule())[-1].cpu()

    def forward_from(self, stage_index: int, activations: Tensor, inputs: Tensor) -> Tensor:
        """Logits of a batch of stage grids (n, C, h, w) at ``stage_index`` (0..3), on the CPU; no graph.

        Runs only what comes after the stage: what ablating a channel there changes. Values from
        before the stage that the rest still reads (a transformer block's residual input, the
        class token) come from ``inputs``, the (1, 3, H, W) image the grids were taken from.
        """
        tail, carried_from = self._tail(stage_index)
        rule = ReluRule()
        with torch.no_grad(), _gate.run():
            carried = [] if carried_from is None else list(carried_from(self._arranged(inputs.to(self.device)), rule))
            n = activations.shape[0]
            carried = [c.expand(n, *c.shape[1:]) if isinstance(c, Tensor) else c for c in carried]
            (logits,) = tail(self._arranged(activations.to(self.device)), rule, *carried)
        return logits.cpu()

    def _tail(self, stage_index: int) -> tuple[fx.GraphModule, fx.GraphModule | None]:
        with self._tails_lock:
            if stage_index not in self._tails:
                self._tails[stage_index] = self._build_tail(self._grids[stage_index])
            return self._tails[stage_index]

    def _build_tail(self, grid: fx.Node) -> tuple[fx.GraphModule, fx.GraphModule | None]:
        after = _descendants(grid)
        needed = _ancestors(self._logits) & after
        carried = sorted(
            {i for n in needed for i in n.all_input_nodes if i not in needed and i is not grid and i is not self._rule and i.op != "get_attr"},
            key=_order(self._graph),
        )
        tail = self._graph_module([grid, self._rule, *carried], [self._logits])
        carried_from = self._graph_module([self._x, self._rule], carried) if carried else None
        return tail, carried_from

    def closed_form_layer4_gradient(self, class_idx: int, shape: torch.Size) -> Tensor | None:
        """∂y_c/∂A4 without a backward pass, or None when the head is not avgpool + Linear."""
        if self.fc_weight is None:
            return None
        channels, height, width = shape
        row = self.fc_weight[class_idx].detach().to("cpu", torch.float32) / (height * width)
        return row.reshape(channels, 1, 1).expand(channels, height, width)

    def outline(self) -> "TwinOutline":
        """What drawing stored maps needs of this twin, without its graph or parameters."""
        return TwinOutline(self.stages, self.grids, self.fixed_input, self.relus, self.fc_weight, self.device)


@dataclass(frozen=True)
class TwinOutline:
    """A twin's description without the network: what an Explanation keeps once it has let go of
    its model (see ``Explanation.hold_network``). It holds no parameter but the head's weight,
    which the closed-form layer4 gradient of any class reads; running it is a programming error.
    """

    stages: tuple[str, ...]
    grids: tuple[tuple[int, int], ...]
    fixed_input: int | None
    relus: int
    fc_weight: Tensor | None
    device: torch.device

    closed_form_layer4_gradient = Twin.closed_form_layer4_gradient

    def outline(self) -> "TwinOutline":
        return self

    def _no_network(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this Explanation has let go of its model: hold one again (Explanation.hold_network) to run a pass")

    forward = logits = forward_from = _no_network


def _reachable(node: fx.Node, step: Callable[[fx.Node], Iterable[fx.Node]]) -> set[fx.Node]:
    """Every node reached from ``node`` by repeated ``step`` (its users, or its inputs), not itself."""
    seen: set[fx.Node] = set()
    stack = list(step(node))
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(step(n))
    return seen


def _descendants(node: fx.Node) -> set[fx.Node]:
    return _reachable(node, lambda n: n.users)


def _ancestors(node: fx.Node) -> set[fx.Node]:
    return _reachable(node, lambda n: n.all_input_nodes)


def _order(graph: fx.Graph) -> Callable[[fx.Node], int]:
    index = {n: i for i, n in enumerate(graph.nodes)}
    return index.__getitem__


_twins: "weakref.WeakKeyDictionary[nn.Module, dict[bool, Twin]]" = weakref.WeakKeyDictionary()
_twins_lock = threading.Lock()


def twin_for(model: nn.Module, input_side: int = 224, *, fold: bool = False) -> Twin:
    """The model's twin, built once and rebuilt only if the model's tensors changed since.

    ``input_side`` is the side of the square dummy input that finds the stages; ``fold``
    chooses the fast, BatchNorm-folded twin (see :class:`Twin`).
    """
    with _twins_lock:
        twins = _twins.setdefault(model, {})
        twin = twins.get(fold)
        if twin is None or twin.fingerprint != _fingerprint(model):
            twin = twins[fold] = Twin(model, input_side, fold=fold)
        return twin


def any_twin(model: nn.Module, input_side: int = 224) -> Twin:
    """A current twin of the model, folded or not, building the exact one only if there is none.

    Both find the same stages, so describing a model never builds a second twin.
    """
    with _twins_lock:
        for twin in _twins.get(model, {}).values():
            if twin.fingerprint == _fingerprint(model):
                return twin
    return twin_for(model, input_side)


def stage_paths(model: nn.Module) -> tuple[str, ...]:
    """The module paths behind layer1..layer4, for which ``model.get_submodule`` returns each."""
    return any_twin(model).stages


