"""The next training engine: fused CPU kernels for what the convolutions leave of a training step.

* ``accelerate(model)`` trains each conv block's BN -> ReLU -> max pool (-> squeeze) through one
  kernel (``csrc/bn_relu_pool.cpp``); the weights, their names and the eval path do not change.
* ``epoch_batches`` is train.epoch_batches with the colour jitter as one kernel
  (``csrc/color_jitter.cpp``), drawing the same random numbers from the generator in the same order.

Opt-in and measured, not yet the paper's engine. The benchmark measures it as the pipeline ``next``
(``python -m se_attention.bench --candidate next``). Training code does not import this module, so the
committed runs keep their code stamps; making it the engine is one line in train.py plus retraining
every run on a CPU (the kernels are CPU code: on a GPU the blocks train module by module, as now),
since the statistics are summed in another order and the numbers then match PyTorch's to float
rounding, not bit for bit.

The kernel is compiled on first use for the CPU it runs on (torch.utils.cpp_extension, a C++
compiler and ninja) and cached per CPU model, instruction set, torch version and source. Where it cannot be built, or on a
GPU, or in bf16, a block trains module by module as before.
"""

from __future__ import annotations

import hashlib
import types
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from . import attention
from .gating import scale

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = [CSRC / "bn_relu_pool.cpp", CSRC / "color_jitter.cpp"]
# -march=native: for the CPU it is built on. -fno-trapping-math (floating point never traps, true in
# PyTorch) lets the compiler turn the kernels' selects into vector blends; the results are unchanged.
CFLAGS = ["-O3", "-march=native", "-fno-trapping-math", "-fopenmp"]


def sources_digest() -> str:
    """The digest of the kernels' C++ sources: part of the build's cache name and of the bench's record digest."""
    return hashlib.sha256(b"|".join(p.read_bytes() for p in SOURCES)).hexdigest()[:16]


class KernelUnavailable(RuntimeError):
    """The fused kernel cannot be compiled here; the message says why."""


@lru_cache(maxsize=1)
def kernel():
    """The kernel's operators (torch.ops.se_fused): built once per machine for its CPU, then loaded from the cache."""
    import logging
    import warnings

    # Importing cpp_extension logs "No CUDA runtime is found" on a CPU machine: this extension is CPU code.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import cpp_extension

    from .provenance import cpu_isa, cpu_model

    # The build is for this CPU and this torch only: the cache is named after them, the flags and the code.
    tag = hashlib.sha256(f"{cpu_model()}|{cpu_isa()}|{torch.__version__}|{CFLAGS}|{sources_digest()}".encode())
    tag = tag.hexdigest()[:12]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no CUDA runtime found": this extension is CPU code
            cpp_extension.load(name=f"se_fused_{tag}", sources=[str(p) for p in SOURCES], extra_cflags=CFLAGS,
                               extra_ldflags=["-fopenmp"], is_python_module=False, verbose=False)
            return torch.ops.se_fused
    except (RuntimeError, OSError, ImportError) as e:  # no compiler, no ninja, or a failed build
        # A compiler's error ends with what went wrong; the command lines before it are long.
        raise KernelUnavailable(f"cannot build {', '.join(p.name for p in SOURCES)}: ...{str(e)[-1500:]}") from e


def available() -> bool:
    try:
        kernel()
        return True
    except KernelUnavailable:
        return False


class BnReluPool(torch.autograd.Function):
    """(x, BN's weight and bias) -> (relu(max_pool2(bn(x))), the squeeze of relu(bn(x)) or an empty tensor).

    BatchNorm in training mode: the batch's statistics normalise, the running statistics are updated
    (momentum, unbiased variance) as nn.BatchNorm2d does.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, bn: nn.BatchNorm2d, squeeze: bool):
        # num_batches_tracked is already counted for this batch (as nn.BatchNorm2d counts it first)
        momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        pooled, z, mean, invstd = kernel().bn_relu_pool(x, weight, bias, bn.running_mean, bn.running_var,
                                                   momentum, bn.eps, squeeze)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        if not squeeze:
            ctx.mark_non_differentiable(z)
        return pooled, z

    @staticmethod
    def backward(ctx, grad_pooled, grad_z):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        if grad_z is None:
            grad_z = torch.empty(0)
        grad_x, grad_w, grad_b = kernel().bn_relu_pool_backward(grad_pooled, grad_z, x, weight, bias, mean, invstd)
        return grad_x, grad_w, grad_b, None, None


def _fusable(block, x: torch.Tensor) -> bool:
    """Whether the kernel computes this block's training pass for the block's input ``x``.

    Decided before the conv runs (its 3 x 3 window with padding 1 and stride 1 keeps H and W), so a
    block that falls back runs its own forward once, conv included.
    """
    bn, conv, gate = block.bn, block.conv, block.se
    before_pool = block.placement == attention.BEFORE_POOL
    return (block.training and bn.training and bn.affine and bn.track_running_stats
            and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and x.numel() > 0 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
            and conv.dilation == (1, 1)
            # spatial attention (CBAM, spatial) needs the full map: no shortcut
            and (isinstance(gate, nn.Identity) or not before_pool or hasattr(gate, "excite")))


def _fused_forward(block, x: torch.Tensor) -> torch.Tensor:
    """ConvBlock.forward in training, with the fused kernel; the block's own forward otherwise."""
    if not _fusable(block, x):
        return type(block).forward(block, x)
    gate = block.se
    squeeze = hasattr(gate, "excite") and block.placement == attention.BEFORE_POOL
    block.bn.num_batches_tracked.add_(1)
    pooled, z = BnReluPool.apply(block.conv(x), block.bn.weight, block.bn.bias, block.bn, squeeze)
    if squeeze:
        return scale(pooled, gate.excite(z))
    if block.placement == attention.AFTER_POOL:
        return gate(pooled)
    return pooled


def accelerate(model: nn.Module) -> nn.Module:
    """Train ``model``'s conv blocks through the fused kernel where it applies; returns the model.

    Raises KernelUnavailable where the kernel cannot be built, so a caller that asked for the fused
    engine never measures the old one under its name.
    """
    kernel()
    for block in model.blocks:
        block.forward = types.MethodType(_fused_forward, block)
    return model


# ------------------------------------------------------------------------------------------ batches


def color_jitter(x: torch.Tensor, cfg, g: torch.Generator) -> torch.Tensor:
    """augment.color_jitter through one kernel: the same draws from ``g``, in the same order.

    The draws are written out here rather than shared with augment.py: augment.py is part of every
    committed run's training stamp, and moving its code would retrain them all.
    """
    from .augment import _uniform

    if x.device.type != "cpu":
        from .augment import color_jitter as module_by_module

        return module_by_module(x, cfg, g)
    n, dev = x.shape[0], x.device
    factors = torch.stack([
        _uniform(n, max(0.0, 1 - cfg.brightness), 1 + cfg.brightness, g, dev),
        _uniform(n, max(0.0, 1 - cfg.contrast), 1 + cfg.contrast, g, dev),
        _uniform(n, max(0.0, 1 - cfg.saturation), 1 + cfg.saturation, g, dev),
        _uniform(n, -cfg.hue, cfg.hue, g, dev),
    ], dim=1)
    order = torch.rand(n, 4, generator=g, device=dev).argsort(dim=1)
    return kernel().color_jitter(x, factors, order)


def augment_batch(x_uint8: torch.Tensor, cfg, g: torch.Generator) -> torch.Tensor:
    """augment.augment_batch with the fused colour jitter."""
    from .augment import random_crop, random_hflip, random_rotation

    x = random_crop(x_uint8, cfg.crop_padding, g)
    x = random_hflip(x, cfg.hflip_p, g)
    x = x.float().div_(255)
    x = color_jitter(x, cfg, g)
    return random_rotation(x, cfg.rotation_deg, g)


def epoch_batches(split, aug, mean, std, batch_size: int, g: torch.Generator):
    """train.epoch_batches with the fused colour jitter: one epoch of batches in a random order from ``g``.

    A copy of train.epoch_batches (and augment_batch above of augment.augment_batch) rather than a
    parameter of it, for the reason color_jitter gives: train.py and augment.py are in every committed
    run's training stamp. When this engine becomes the engine, the copies replace the originals.
    """
    from .augment import normalize

    n = len(split.y)
    order = torch.randperm(n, generator=g, device=split.y.device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        x = normalize(augment_batch(split.x[idx].contiguous(), aug, g), mean, std)
        yield x.contiguous(memory_format=torch.channels_last), split.y[idx]
