"""The lesson's CIFAR-10 CNN; ``build_model("se")`` adds an SE block after each conv block.

block k: conv3x3(pad 1) -> BN -> ReLU -> [SE] -> MaxPool2, channels 32, 64, 128
head:    flatten 128x4x4 = 2048 -> 512 -> ReLU -> Dropout 0.5 -> 10
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .se import SEBlock, scale

MODELS = ("cnn", "se")


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, se_reduction: int | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        self.se = SEBlock(c_out, se_reduction) if se_reduction else nn.Identity()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if not self.training:
            # The block as drawn, module by module, so hooks on self.se (Grad-CAM, the probe)
            # see the rescaled map before pooling.
            return self.pool(self.se(torch.relu(x)))
        # Training computes the same function in a cheaper order. Max pooling commutes with any
        # monotone per-channel map: pool(relu(x)) == relu(pool(x)), and, SE gates being positive
        # constants per channel, pool(s * x) == s * pool(x), exactly in floating point too (rounding
        # is monotone). So ReLU (CNN) and the SE rescaling touch a quarter of the values, forward
        # and backward. SE's squeeze still averages the full-resolution map, as the paper does.
        if isinstance(self.se, SEBlock):
            x = torch.relu(x)
            return scale(self.pool(x), self.se.gates(x))
        return torch.relu(self.pool(x))


class LessonCNN(nn.Module):
    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        hidden: int = 512,
        dropout: float = 0.5,
        num_classes: int = 10,
        se_reduction: int | None = None,
    ) -> None:
        super().__init__()
        widths = (3, *channels)
        self.blocks = nn.ModuleList(ConvBlock(a, b, se_reduction) for a, b in zip(widths[:-1], widths[1:]))
        side = 32 // 2 ** len(channels)
        self.fc1 = nn.Linear(channels[-1] * side * side, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        x = torch.flatten(x, 1)
        x = self.dropout(torch.relu(self.fc1(x)))
        return self.fc2(x)


def build_model(name: str, se_reduction: int = 16, **kwargs) -> LessonCNN:
    """``"cnn"`` is the lesson's baseline; ``"se"`` is the same network with SE blocks."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    return LessonCNN(se_reduction=se_reduction if name == "se" else None, **kwargs)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def multiply_adds(model: LessonCNN, image_side: int = 32) -> int:
    """Multiply-accumulate operations of one forward pass on one image (convs and linears)."""
    total, side = 0, image_side
    for block in model.blocks:
        conv = block.conv
        total += conv.in_channels * conv.out_channels * 9 * side * side
        if isinstance(block.se, SEBlock):
            total += block.se.fc1.weight.numel() + block.se.fc2.weight.numel() + conv.out_channels * side * side
        side //= 2
    return total + model.fc1.weight.numel() + model.fc2.weight.numel()
