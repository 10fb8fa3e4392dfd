"""What every channel-attention module shares: the squeeze of a feature map and the rescaling."""

from __future__ import annotations

import torch


# --8<-- [start:squeeze_scale]
def squeeze(x: torch.Tensor) -> torch.Tensor:
    """Global average pool, N x C x H x W -> N x C.

    sum / (H W), not mean: the backward of a sum is a broadcast view, where mean's backward
    writes a divided copy of the whole feature map (a third of the SE block's cost on a CPU).
    """
    return x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])


def scale(x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Multiply each channel of ``x`` (N x C x H x W) by its gate (N x C)."""
    return x * gates[:, :, None, None]
# --8<-- [end:squeeze_scale]
