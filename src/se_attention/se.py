"""Squeeze-and-Excitation block (Hu, Shen, Sun: "Squeeze-and-Excitation Networks", CVPR 2018).

squeeze    z = global average pool of x                      (C x H x W -> C)
excitation s = sigmoid(W2 relu(W1 z)),  W1: C/r x C, W2: C x C/r, no biases (paper eq. 3)
scale      y = s * x, one gate per channel

Parameters: 2 C (C // r). With the lesson's r = 16 the first block (C = 32) has only 2 hidden
units; timm would round the hidden width up to 8. We keep the lesson's integer division, and the
site states it.
"""

from __future__ import annotations

import torch
from torch import nn

from .gating import scale, squeeze


# --8<-- [start:se_block]
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

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        """Gates (N x C) from the squeezed descriptor z (N x C)."""
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))
        self.last_gates = s.detach()
        return s

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        return self.excite(squeeze(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scale(x, self.gates(x))
# --8<-- [end:se_block]

    def multiply_adds(self, side: int) -> int:
        """Per image on a side x side map: the two FC layers and one multiply per value rescaled."""
        return self.fc1.weight.numel() + self.fc2.weight.numel() + self.fc2.out_features * side * side


def se_parameter_count(channels: int, reduction: int) -> int:
    """Weights added by one SE block: 2 C (C // r)."""
    return 2 * channels * (channels // reduction)
