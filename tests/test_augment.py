"""The batched augmentation must draw from the same distributions as the lesson's torchvision
transforms. Each operation is compared with torchvision's functional op at the same parameter,
then the whole pipeline is compared with torchvision's Compose on PIL images by two-sample
Kolmogorov-Smirnov tests on summary statistics (fixed seeds, so the test is repeatable)."""

import math

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from scipy import stats
from PIL import Image

from se_attention import augment as A

CFG = A.AugmentConfig()


def photo(seed=0):
    """A smooth, asymmetric, colourful test image (uint8, 3 x 32 x 32)."""
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    rng = np.random.default_rng(seed)
    img = np.stack([0.2 + 0.7 * xx, 0.3 + 0.5 * yy * xx, 0.8 - 0.6 * yy], 0) + rng.normal(0, 0.03, (3, 32, 32))
    return torch.from_numpy((np.clip(img, 0, 1) * 255).round().astype(np.uint8))


@pytest.mark.parametrize("op, ref, factor", [
    (A.adjust_brightness, TF.adjust_brightness, 1.17),
    (A.adjust_contrast, TF.adjust_contrast, 0.85),
    (A.adjust_saturation, TF.adjust_saturation, 1.2),
    (A.adjust_hue, TF.adjust_hue, 0.07),
    (A.adjust_hue, TF.adjust_hue, -0.09),
])
def test_colour_ops_equal_torchvision(op, ref, factor):
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ours = op(x, torch.full((6,), factor))
    theirs = torch.stack([ref(xi, factor) for xi in x])
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_rotation_equals_torchvision_rotate():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    angle = float(A._uniform(1, -15, 15, torch.Generator().manual_seed(3), "cpu")[0])
    ours = A.random_rotation(x[:1], 15, g)
    torch.testing.assert_close(ours[0], TF.rotate(x[0], angle), atol=0, rtol=0)


def test_crop_offsets_are_uniform_over_all_81_positions():
    x = torch.zeros(4000, 1, 32, 32, dtype=torch.uint8)
    x[:, 0, 0, 0] = 255  # a marker at the top-left corner reveals the offset
    out = A.random_crop(x, 4, torch.Generator().manual_seed(0))
    _, rows, cols = (out[:, 0] == 255).nonzero().T.numpy()
    # Offsets dy, dx in 0..8: the marker lands at (4 - dy, 4 - dx) when that is inside the window,
    # so only offsets with dy, dx <= 4 keep it: 25 of 81 positions, each equally likely.
    counts = np.bincount((4 - rows) * 9 + (4 - cols), minlength=81).reshape(9, 9)
    seen = counts[:5, :5].ravel()
    assert counts.sum() == seen.sum()
    assert stats.chisquare(seen).pvalue > 1e-3
    assert abs(len(rows) / 4000 - 25 / 81) < 0.03


def test_flip_rate_is_one_half():
    x = torch.arange(32, dtype=torch.uint8).repeat(2000, 1, 32, 1)
    out = A.random_hflip(x, 0.5, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 31).float().mean().item()
    assert stats.binomtest(int(flipped * 2000), 2000, 0.5).pvalue > 1e-3


def summary(batch: torch.Tensor) -> dict[str, np.ndarray]:
    """Statistics each augmentation moves: brightness, contrast, colour balance, fill, position."""
    x = batch.double()
    gray = x.mean(1)
    cols = torch.arange(32, dtype=torch.float64)
    return {
        "mean": x.mean((1, 2, 3)).numpy(),
        "std": x.std((1, 2, 3)).numpy(),
        "red_minus_blue": (x[:, 0] - x[:, 2]).mean((1, 2)).numpy(),
        "green_share": (x[:, 1].mean((1, 2)) / x.mean((1, 2, 3)).clamp_min(1e-6)).numpy(),
        "zero_fill": (x.sum(1) == 0).double().mean((1, 2)).numpy(),
        "x_centroid": ((gray * cols).sum((1, 2)) / gray.sum((1, 2)).clamp_min(1e-6)).numpy(),
    }


def test_pipeline_matches_torchvision_distribution():
    n = 1500
    img = photo()
    lesson = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                        T.ColorJitter(0.2, 0.2, 0.2, 0.1), T.RandomRotation(15), T.ToTensor()])
    torch.manual_seed(0)
    pil = Image.fromarray(img.permute(1, 2, 0).numpy())
    theirs = summary(torch.stack([lesson(pil) for _ in range(n)]))
    ours = summary(A.augment_batch(img.expand(n, -1, -1, -1).contiguous(), CFG, torch.Generator().manual_seed(0)))
    for key in theirs:
        p = stats.ks_2samp(theirs[key], ours[key]).pvalue
        assert p > 1e-3, f"{key}: distributions differ (KS p = {p:.2g})"


def test_pipeline_would_notice_a_wrong_parameter():
    """The same statistics reject a pipeline with double the rotation and no flips (power check)."""
    n = 1500
    img = photo()
    ok = summary(A.augment_batch(img.expand(n, -1, -1, -1).contiguous(), CFG, torch.Generator().manual_seed(0)))
    wrong = A.AugmentConfig(rotation_deg=30.0, hflip_p=0.0)
    bad = summary(A.augment_batch(img.expand(n, -1, -1, -1).contiguous(), wrong, torch.Generator().manual_seed(1)))
    assert min(stats.ks_2samp(ok[k], bad[k]).pvalue for k in ok) < 1e-6


def test_same_generator_seed_same_batch():
    x = photo().expand(8, -1, -1, -1).contiguous()
    a = A.augment_batch(x, CFG, torch.Generator().manual_seed(5))
    b = A.augment_batch(x, CFG, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert not math.isclose(float(a.std()), 0.0)
