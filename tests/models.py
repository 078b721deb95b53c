"""Models the tests build: random-init torchvision ResNets with lived-in BatchNorm statistics,
and a narrow ResNet small enough to train inside a test."""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock


def random_resnet(name: str, seed: int = 0, num_classes: int = 1000) -> nn.Module:
    """A torchvision ResNet with random weights and random (not identity) BatchNorm statistics,
    so that an engine that mishandles BatchNorm cannot pass by accident."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model.eval()


def tiny_resnet(
    num_classes: int,
    widths: tuple[int, ...] = (8, 16, 32, 64),
    seed: int = 0,
    blocks: tuple[int, ...] = (1, 1, 1, 1),
) -> torchvision.models.ResNet:
    """A genuine torchvision ResNet (BasicBlock; by default one block per stage) with narrow stages."""
    torch.manual_seed(seed)
    model = torchvision.models.ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
    model.inplanes = widths[0]
    model.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(widths[0])
    model.layer1 = model._make_layer(BasicBlock, widths[0], blocks[0])
    model.layer2 = model._make_layer(BasicBlock, widths[1], blocks[1], stride=2)
    model.layer3 = model._make_layer(BasicBlock, widths[2], blocks[2], stride=2)
    model.layer4 = model._make_layer(BasicBlock, widths[3], blocks[3], stride=2)
    model.fc = nn.Linear(widths[3], num_classes)
    return model


def model_state(model: nn.Module) -> dict:
    """Everything about a model that explaining it must leave alone."""
    return {
        "tensors": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
    }


def hooks_on(model: nn.Module) -> int:
    total = 0
    for module in model.modules():
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks"):
            total += len(getattr(module, name, {}))
    return total


def assert_untouched(model: nn.Module, before: dict) -> None:
    after = model_state(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert before["tensors"].keys() == after["tensors"].keys()
    for key, tensor in before["tensors"].items():
        assert torch.equal(tensor, after["tensors"][key]), key
    assert all(p.grad is None for p in model.parameters())
    assert hooks_on(model) == 0
