"""Convolutional Block Attention Module (Woo, Park, Lee, Kweon: "CBAM: Convolutional Block
Attention Module", ECCV 2018), and its spatial branch alone.

channel  Mc = sigmoid(MLP(avgpool x) + MLP(maxpool x)), one MLP C -> C/r -> C shared by both
         descriptors, ReLU inside, no biases (paper eq. 2);         x' = Mc * x
spatial  Ms = sigmoid(conv7x7([mean over C of x'; max over C of x'])), 2 -> 1 channel,
         padding 3, no bias (paper eq. 3);                            y = Ms * x'

Parameters: 2 C (C // r) for the channel MLP (SE's count) + 2 * 7 * 7 = 98 for the spatial conv.
"""

from __future__ import annotations

import torch
from torch import nn

from .gating import scale, squeeze


# --8<-- [start:channel_gate]
class ChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"CBAM reduction {reduction} is larger than the {channels} channels it reduces")
        self.fc1 = nn.Linear(channels, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def mlp(d):
            return self.fc2(torch.relu(self.fc1(d)))
        return torch.sigmoid(mlp(squeeze(x)) + mlp(x.amax(dim=(2, 3))))
# --8<-- [end:channel_gate]


# --8<-- [start:spatial_attention]
class SpatialAttention(nn.Module):
    """CBAM's spatial branch: one gate per position, shared by all channels."""

    def __init__(self, channels: int, reduction: int | None = None, kernel_size: int = 7) -> None:
        super().__init__()  # `reduction` is accepted for the registry and ignored
        self.channels = channels
        self.conv = nn.Conv2d(2, 1, kernel_size=kernel_size, padding=kernel_size // 2, bias=False)
        self.last_map: torch.Tensor | None = None

    def gate_map(self, x: torch.Tensor) -> torch.Tensor:
        """N x 1 x H x W gates from the channel mean and max of x."""
        m = torch.sigmoid(self.conv(torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], 1)))
        self.last_map = m.detach()
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_map(x)
# --8<-- [end:spatial_attention]

    def multiply_adds(self, side: int) -> int:
        """The 7 x 7 conv over two maps, and one multiply per value rescaled."""
        k = self.conv.kernel_size[0]
        return 2 * k * k * side * side + self.channels * side * side


# --8<-- [start:cbam]
class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channel = ChannelGate(channels, reduction)
        self.spatial = SpatialAttention(channels)
        self.channels = channels
        self.last_gates: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.channel(x)
        self.last_gates = s.detach()
        return self.spatial(scale(x, s))
# --8<-- [end:cbam]

    def multiply_adds(self, side: int) -> int:
        mlp = 2 * (self.channel.fc1.weight.numel() + self.channel.fc2.weight.numel())
        return mlp + self.channels * side * side + self.spatial.multiply_adds(side)
