"""The next training engine: each conv block's BN -> ReLU -> max pool (-> squeeze) as one fused CPU kernel.

Opt-in and measured, not yet the paper's engine: ``accelerate(model)`` swaps the training forward of
every conv block of a LessonCNN for ``csrc/bn_relu_pool.cpp``; the weights, their names and the eval
path do not change. The benchmark measures it as the pipeline ``next``
(``python -m se_attention.bench --candidate next``). Training code does not import this module, so the
committed runs keep their code stamps; making it the engine is one line in train.py plus retraining
every run (on a GPU: ``python -m se_attention.fleet``), since the statistics are summed in another
order and the numbers then match PyTorch's to float rounding, not bit for bit.

The kernel is compiled on first use for the CPU it runs on (torch.utils.cpp_extension, a C++
compiler and ninja) and cached per CPU model and instruction set. Where it cannot be built, or on a
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

SOURCE = Path(__file__).resolve().parent / "csrc" / "bn_relu_pool.cpp"
# -march=native: for the CPU it is built on. -fno-trapping-math (floating point never traps, true in
# PyTorch) lets the compiler turn the kernels' selects into vector blends; the results are unchanged.
CFLAGS = ["-O3", "-march=native", "-fno-trapping-math", "-fopenmp"]


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

    # The build is for this CPU only, so the cache is named after the CPU, the flags and the code.
    tag = hashlib.sha256(f"{cpu_model()}|{cpu_isa()}|{CFLAGS}|{SOURCE.read_bytes().hex()}".encode()).hexdigest()[:12]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no CUDA runtime found": this extension is CPU code
            cpp_extension.load(name=f"se_bn_relu_pool_{tag}", sources=[str(SOURCE)], extra_cflags=CFLAGS,
                               extra_ldflags=["-fopenmp"], is_python_module=False, verbose=False)
            return torch.ops.se_fused
    except (RuntimeError, OSError, ImportError) as e:  # no compiler, no ninja, or a failed build
        # A compiler's error ends with what went wrong; the command lines before it are long.
        raise KernelUnavailable(f"cannot build {SOURCE.name}: ...{str(e)[-1500:]}") from e


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
    bn = block.bn
    return (block.training and x.device.type == "cpu" and x.dtype == torch.float32 and bn.training
            and bn.affine and bn.track_running_stats and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and not torch.is_autocast_enabled("cpu"))


def _fused_forward(block, x: torch.Tensor) -> torch.Tensor:
    """ConvBlock.forward in training, with the fused kernel; the block's own forward otherwise."""
    y = block.conv(x)
    if not _fusable(block, y):
        return type(block).forward(block, x)
    gate = block.se
    squeeze = hasattr(gate, "excite") and block.placement == attention.BEFORE_POOL
    if not (squeeze or isinstance(gate, nn.Identity) or block.placement == attention.AFTER_POOL):
        return type(block).forward(block, x)  # spatial attention needs the full map: no shortcut
    block.bn.num_batches_tracked.add_(1)
    pooled, z = BnReluPool.apply(y, block.bn.weight, block.bn.bias, block.bn, squeeze)
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
