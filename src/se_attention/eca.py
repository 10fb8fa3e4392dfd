"""Efficient Channel Attention (Wang, Wu, Zhu, Li, Zuo, Hu: "ECA-Net: Efficient Channel Attention
for Deep Convolutional Neural Networks", CVPR 2020).

squeeze    z = global average pool of x                          (C x H x W -> C)
excitation s = sigmoid(conv1d_k(z)): one k-tap filter slid across the channels, no reduction,
           no bias; k = |(log2 C + b) / gamma| rounded up to odd, gamma = 2, b = 1 (paper eq. 12)
scale      y = s * x

Parameters: k per block (3, 3 and 5 for the lesson's 32, 64 and 128 channels), against SE's
2 C (C // r): each gate sees only its k neighbouring channels, not all of them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .gating import scale, squeeze


# --8<-- [start:eca_kernel]
def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """The paper's adaptive kernel size: t = int(|(log2 C + b) / gamma|), then the next odd number."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1
# --8<-- [end:eca_kernel]


# --8<-- [start:eca_block]
class ECABlock(nn.Module):
    def __init__(self, channels: int, reduction: int | None = None) -> None:
        super().__init__()  # `reduction` is accepted for the registry and ignored: ECA has none
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=k // 2, bias=False)
        self.channels = channels
        self.last_gates: torch.Tensor | None = None

    def excite(self, z: torch.Tensor) -> torch.Tensor:
        """Gates (N x C) from the squeezed descriptor z (N x C)."""
        s = torch.sigmoid(self.conv(z[:, None, :])[:, 0, :])
        self.last_gates = s.detach()
        return s

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        return self.excite(squeeze(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scale(x, self.gates(x))
# --8<-- [end:eca_block]

    def multiply_adds(self, side: int) -> int:
        return self.channels * self.conv.kernel_size[0] + self.channels * side * side
