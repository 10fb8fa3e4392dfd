"""Squeeze-and-Excitation block (Hu, Shen, Sun: "Squeeze-and-Excitation Networks", CVPR 2018).

squeeze    z = global average pool of x                      (C x H x W -> C)
excitation s = sigmoid(W2 relu(W1 z)),  W1: C/r x C, W2: C x C/r, no biases (paper eq. 3)
scale      y = s * x, one gate per channel

With the lesson's r = 16 the first block (C = 32) has only 2 hidden units; timm would round the
hidden width up to 8. We keep the lesson's integer division, and the site states it.
"""

from __future__ import annotations

import torch
from torch import nn


class SEBlock(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"SE reduction {reduction} is larger than the {channels} channels it reduces")
        self.fc1 = nn.Linear(channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, channels, bias=False)
        # The last gates are kept for inspection (probe, figures); they are not part of the graph.
        self.last_gates: torch.Tensor | None = None

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        # sum / (H W), not mean: the backward of a sum is a broadcast view, where mean's backward
        # writes a divided copy of the whole feature map (a third of the SE block's cost on a CPU).
        z = x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))
        self.last_gates = s.detach()
        return s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scale(x, self.gates(x))


def scale(x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Multiply each channel of ``x`` (N x C x H x W) by its gate (N x C)."""
    return x * gates[:, :, None, None]


def se_parameter_count(channels: int, reduction: int) -> int:
    """Weights added by one SE block: 2 C (C // r)."""
    return 2 * channels * (channels // reduction)
