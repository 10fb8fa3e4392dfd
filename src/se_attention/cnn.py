"""The lesson's CIFAR-10 CNN; ``build_model(name)`` adds one attention module per conv block.

block k: conv3x3(pad 1) -> BN -> ReLU -> [attention] -> MaxPool2 -> [attention after the pool],
         channels 32, 64, 128
head:    flatten 128x4x4 = 2048 -> 512 -> ReLU -> Dropout 0.5 -> 10

"cnn" is the lesson's baseline; every other name is an attention module from the registry
(se_attention.attention): "se" is the lesson's SE model.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import attention
from .gating import scale

MODELS = ("cnn", *attention.REGISTRY)


class ReluPoolSqueeze(torch.autograd.Function):
    """relu(x) -> (max_pool2(relu(x)), mean over H, W of relu(x)), in fewer passes over x.

    For a channel-gate module (SE, ECA) before the pool, this is all training needs of the full
    resolution map: the pooled map (to rescale) and the squeeze (to compute the gates). Autograd
    would run ReLU's backward on the full map, add the pool's and the squeeze's gradients there
    and fill a zero map for the pool: three passes over the largest tensor of the network. Here
    the gradient is one pass (the squeeze's, masked by x > 0) plus the pool's gradient added at
    the quarter of the positions that hold a window's maximum. Values and gradients are bitwise
    those of the module-by-module graph (tests/test_models.py): every sum is the same single add.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, argmax = torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
        pooled = pooled.relu_()  # == pool(relu(x)): max pooling commutes with a monotone map
        z = x.relu().sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])  # gating.squeeze of relu(x)
        ctx.save_for_backward(x, argmax, pooled)
        return pooled, z

    @staticmethod
    def backward(ctx, grad_pooled: torch.Tensor, grad_z: torch.Tensor) -> torch.Tensor:
        x, argmax, pooled = ctx.saved_tensors
        per_value = grad_z / (x.shape[2] * x.shape[3])
        grad = torch.ops.aten.threshold_backward(per_value[:, :, None, None].expand_as(x), x, 0)
        grad_pooled = torch.ops.aten.threshold_backward(grad_pooled, pooled, 0)
        # Windows do not overlap: each value receives at most one pooled gradient.
        grad.flatten(2).scatter_add_(2, argmax.flatten(2), grad_pooled.flatten(2))
        return grad


# --8<-- [start:conv_block]
class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, entry: attention.Entry | None = None, reduction: int = 16) -> None:
        super().__init__()
        # Built in this order (conv, BN, attention): the order fixes which random numbers each
        # initialisation draws, so a seed gives the weights it gave the committed runs.
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        # Called `se` whatever the module is: the committed SE weights name it so (blocks.k.se.*).
        self.se = entry.build(c_out, reduction) if entry else nn.Identity()
        self.pool = nn.MaxPool2d(2)
        self.placement = entry.placement if entry else attention.BEFORE_POOL

    @property
    def attention(self) -> nn.Module:
        return self.se

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if self.placement == attention.AFTER_POOL:
            # relu(pool(x)) == pool(relu(x)), with ReLU on a quarter of the values.
            return self.se(torch.relu(self.pool(x)))
        if not self.training:
            # The block as drawn, module by module, so hooks on self.se (Grad-CAM, the probe)
            # see the rescaled map before pooling.
            return self.pool(self.se(torch.relu(x)))
        # Training computes the same function in a cheaper order. Max pooling commutes with any
        # monotone per-channel map: pool(relu(x)) == relu(pool(x)), and, gates being positive
        # constants per channel, pool(s * x) == s * pool(x), exactly in floating point too (rounding
        # is monotone). So ReLU (CNN) and the rescaling touch a quarter of the values, forward and
        # backward. The squeeze still averages the full-resolution map, as the papers do.
        if hasattr(self.se, "excite"):
            pooled, z = ReluPoolSqueeze.apply(x)
            return scale(pooled, self.se.excite(z))
        if isinstance(self.se, nn.Identity):
            return torch.relu(self.pool(x))
        return self.pool(self.se(torch.relu(x)))  # spatial attention: no shortcut
# --8<-- [end:conv_block]


class LessonCNN(nn.Module):
    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        hidden: int = 512,
        dropout: float = 0.5,
        num_classes: int = 10,
        attention_name: str | None = None,
        se_reduction: int = 16,
    ) -> None:
        super().__init__()
        entry = attention.entry(attention_name) if attention_name else None
        widths = (3, *channels)
        self.blocks = nn.ModuleList(ConvBlock(a, b, entry, se_reduction) for a, b in zip(widths[:-1], widths[1:]))
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
    """``"cnn"`` is the lesson's baseline; any other name of MODELS adds that attention module."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    return LessonCNN(attention_name=None if name == "cnn" else name, se_reduction=se_reduction, **kwargs)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def multiply_adds(model: LessonCNN, image_side: int = 32) -> int:
    """Multiply-accumulate operations of one forward pass on one image (convs, linears, attention)."""
    total, side = 0, image_side
    for block in model.blocks:
        conv = block.conv
        total += conv.in_channels * conv.out_channels * 9 * side * side
        if not isinstance(block.se, nn.Identity):
            total += block.se.multiply_adds(side // 2 if block.placement == attention.AFTER_POOL else side)
        side //= 2
    return total + model.fc1.weight.numel() + model.fc2.weight.numel()
