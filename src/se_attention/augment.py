"""The lesson's augmentation, applied to whole batches with per-sample random parameters.

torchvision applies RandomCrop(32, padding=4) -> RandomHorizontalFlip -> ColorJitter(0.2, 0.2,
0.2, 0.1) -> RandomRotation(15) to one PIL image at a time. Doing the same maths on a uint8 batch
tensor removes the per-image Python and PIL overhead, which was half of each training step.
Each sample still draws its own crop offset, flip, jitter factors, jitter order and angle from
the same distributions as torchvision (tests/test_augment.py checks that statistically).
All randomness comes from the ``torch.Generator`` passed in, so a seed fixes everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    crop_padding: int = 4
    hflip_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    rotation_deg: float = 15.0


def _uniform(n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and take a random window of the original size per sample."""
    if padding == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_hflip(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=g, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    # ITU-R 601-2 luma, the weights torchvision uses for rgb_to_grayscale.
    r, gch, b = x.unbind(1)
    return (0.299 * r + 0.587 * gch + 0.114 * b).unsqueeze(1)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor[:, None, None, None] * a + (1 - factor[:, None, None, None]) * b).clamp(0, 1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, torch.zeros_like(x), f)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    mean = _grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean.expand_as(x), f)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _grayscale(x).expand_as(x), f)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` turns (in [-0.5, 0.5]) per sample, via HSV as torchvision does."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    delta = maxc - minc
    v = maxc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    h = (h + shift[:, None, None]) % 1.0
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = torch.stack(
        [torch.stack(c, dim=1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], dim=0
    )
    return choices.gather(0, i[None, :, None].expand(1, -1, 3, -1, -1)).squeeze(0)


def color_jitter(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """ColorJitter with per-sample factors and a per-sample random order of the four ops."""
    n, dev = x.shape[0], x.device
    factors = [
        _uniform(n, max(0.0, 1 - cfg.brightness), 1 + cfg.brightness, g, dev),
        _uniform(n, max(0.0, 1 - cfg.contrast), 1 + cfg.contrast, g, dev),
        _uniform(n, max(0.0, 1 - cfg.saturation), 1 + cfg.saturation, g, dev),
        _uniform(n, -cfg.hue, cfg.hue, g, dev),
    ]
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    order = torch.rand(n, 4, generator=g, device=dev).argsort(dim=1)  # a uniform random permutation
    for position in range(4):
        for op_index, op in enumerate(ops):
            idx = torch.nonzero(order[:, position] == op_index).squeeze(1)
            if idx.numel():
                x = x.index_copy(0, idx, op(x[idx], factors[op_index][idx]))
    return x


def random_rotation(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    """Rotate about the centre by U(-degrees, degrees), nearest neighbour, zero fill."""
    if degrees == 0:
        return x
    n = x.shape[0]
    theta = _uniform(n, -degrees, degrees, g, x.device) * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    mat = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device, dtype=x.dtype)[None, :, None, None]
    s = torch.tensor(std, device=x.device, dtype=x.dtype)[None, :, None, None]
    return (x - m) / s


def augment_batch(x_uint8: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """uint8 N x 3 x H x W -> float in [0, 1], augmented as the lesson's train transform."""
    x = random_crop(x_uint8, cfg.crop_padding, g)
    x = random_hflip(x, cfg.hflip_p, g)
    x = x.float().div_(255)
    x = color_jitter(x, cfg, g)
    return random_rotation(x, cfg.rotation_deg, g)
