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


BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # ColorJitter's op indices, in its order


def _uniform(n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and take a random window of the original size per sample."""
    if padding == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy, dx = crop_offsets(n, padding, g, x.device)
    # Every window as a view (N, C, offsets_y, offsets_x, H, W); one gather picks each sample's own.
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    return windows[torch.arange(n, device=x.device), :, dy, dx]


def crop_offsets(n: int, padding: int, g: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """RandomCrop's draws: each sample's window offset in the padded image, rows (dy) then columns (dx)."""
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=g, device=device)
    return dy, dx


def flip_draws(n: int, p: float, g: torch.Generator, device) -> torch.Tensor:
    """RandomHorizontalFlip's draws: True for the samples that are flipped, each with probability ``p``."""
    return torch.rand(n, generator=g, device=device) < p


def random_hflip(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    flip = flip_draws(x.shape[0], p, g, x.device)
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
    """Rotate hue by ``shift`` turns (in [-0.5, 0.5]) per sample, via HSV as torchvision does.

    A hue rotation keeps V = max and the chroma C = max - min, so every channel of the result is
    max - C clamp(min(k, 4 - k), 0, 1) with k = (n_c + 6 h') mod 6, n = 5, 3, 1 for R, G, B and h'
    the shifted hue: the six-sector HSV -> RGB table of torchvision in closed form. The mod 6
    absorbs the wrap-around of the hue, so h is never reduced to [0, 1) on the way.
    """
    r, g, b = x.unbind(1)
    # Elementwise max/min of three planes: several times faster than a reduction over dim 1.
    maxc = torch.maximum(torch.maximum(r, g), b)
    chroma = maxc - torch.minimum(torch.minimum(r, g), b)
    inv = 1.0 / torch.where(chroma > 0, chroma, torch.ones_like(chroma))  # grey pixels: any hue, C = 0
    h6 = torch.where(maxc == r, (g - b) * inv, torch.where(maxc == g, (b - r) * inv + 2.0, (r - g) * inv + 4.0))
    n_c = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype)
    k = h6[:, None] + (n_c[None, :] + 6.0 * shift[:, None])[:, :, None, None]
    k = k - 6.0 * torch.floor(k / 6.0)
    return maxc[:, None] - chroma[:, None] * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)


def jitter_draws(n: int, cfg: AugmentConfig, g: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """ColorJitter's draws for ``n`` samples: the four factors (N x 4: brightness, contrast, saturation,
    hue) and each sample's order of the four ops (N x 4, a uniform random permutation).

    The fused batch kernel (se_attention.fused) takes these same draws, so both paths draw the same
    numbers from ``g`` in the same order.
    """
    factors = torch.stack([
        _uniform(n, max(0.0, 1 - cfg.brightness), 1 + cfg.brightness, g, device),
        _uniform(n, max(0.0, 1 - cfg.contrast), 1 + cfg.contrast, g, device),
        _uniform(n, max(0.0, 1 - cfg.saturation), 1 + cfg.saturation, g, device),
        _uniform(n, -cfg.hue, cfg.hue, g, device),
    ], dim=1)
    order = torch.rand(n, 4, generator=g, device=device).argsort(dim=1)
    return factors, order


def rotation_grid(n: int, h: int, w: int, degrees: float, g: torch.Generator, device) -> torch.Tensor:
    """RandomRotation's draws (an angle in U(-degrees, degrees) per sample) as grid_sample's
    sampling grid, N x H x W x 2 in float32: a rotation about the image's centre."""
    theta = _uniform(n, -degrees, degrees, g, device) * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    mat = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _affine_grid(mat.to(torch.float32), h, w)


def color_jitter(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """ColorJitter with per-sample factors and a per-sample random order of the four ops.

    At each of the four positions every sample applies one op. Brightness, contrast and
    saturation are all the blend ``f x + (1 - f) base`` (base: black, the mean grey, the grey
    image), so one whole-batch blend serves them all, with f = 1 (an exact no-op) for the
    samples whose op at this position is hue; hue then runs on just those samples.
    """
    factors, order = jitter_draws(x.shape[0], cfg, g, x.device)
    # Per sample and position: x <- clamp(f x + w_mean mean grey + w_grey grey image), with
    # w = 1 - f on the op's own base: brightness (black), contrast (mean grey), saturation (grey
    # image); for hue f = 1 and w = 0 (x itself), and hue runs afterwards on those samples alone.
    f = factors.gather(1, order)
    is_hue = order == HUE
    f_blend = torch.where(is_hue, torch.ones_like(f), f)
    rest = 1 - f_blend
    w_mean = torch.where(order == CONTRAST, rest, torch.zeros_like(rest))
    w_gray = torch.where(order == SATURATION, rest, torch.zeros_like(rest))
    for position in range(4):
        gray = _grayscale(x)
        base = torch.addcmul(w_mean[:, position, None, None, None] * gray.mean(dim=(1, 2, 3), keepdim=True),
                             w_gray[:, position, None, None, None], gray)
        x = torch.addcmul(base, f_blend[:, position, None, None, None], x).clamp_(0, 1)
        if x.device.type == "cpu":
            # On a CPU, hue for only the quarter of the samples that draw it here is cheaper.
            idx = torch.nonzero(is_hue[:, position]).squeeze(1)
            if idx.numel():
                x[idx] = adjust_hue(x[idx], f[idx, position])  # x is this function's own tensor (made by the blend)
        else:
            # On a GPU, picking samples would wait for the device (nonzero's size is data); every
            # sample computes the hue and the mask keeps it where drawn: the same values, per pixel.
            x = torch.where(is_hue[:, position, None, None, None], adjust_hue(x, f[:, position]), x)
    return x


def random_rotation(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    """Rotate about the centre by U(-degrees, degrees), nearest neighbour, zero fill."""
    if degrees == 0:
        return x
    grid = rotation_grid(x.shape[0], x.shape[2], x.shape[3], degrees, g, x.device).to(x.dtype)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """F.affine_grid(theta, (N, C, h, w), align_corners=False) as one matrix product.

    affine_grid multiplies the same (h w) x 3 grid of pixel centres by each sample's 2 x 3 matrix
    in a batched product with an inner size of 3, which took longer than the rest of the rotation;
    one (h w) x 3 by 3 x 2N product gives the same grid.
    """
    base = torch.ones(h, w, 3, dtype=theta.dtype, device=theta.device)
    base[..., 0] = torch.linspace(-1, 1, w, dtype=theta.dtype, device=theta.device) * (w - 1) / w
    base[..., 1] = (torch.linspace(-1, 1, h, dtype=theta.dtype, device=theta.device) * (h - 1) / h)[:, None]
    n = theta.shape[0]
    grid = base.view(h * w, 3) @ theta.permute(2, 0, 1).reshape(3, n * 2)  # (h w) x (N 2)
    return grid.view(h, w, n, 2).permute(2, 0, 1, 3)


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
