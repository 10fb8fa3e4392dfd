"""The training engine's fused CPU kernels: what the convolutions leave of a training step.

* ``accelerate(model)`` trains each conv block's BN -> ReLU -> max pool (-> squeeze) through one
  kernel (``csrc/bn_relu_pool.cpp``), an SE block's excitation and rescaling through another
  (``csrc/se_gate.cpp``), and the weight gradient of the convs with 16 or more input channels as
  matrix products (``csrc/conv_weight_grad.cpp``); the weights, their names and the eval path do not
  change. Dropout's mask is drawn from uniform numbers (``uniform_dropout``).
* ``augmented_batch`` makes a whole augmented, normalised batch in one kernel
  (``csrc/color_jitter.cpp``), drawing its random numbers with augment.py's own draw functions, in
  augment's order: the same crops, flips and rotations as the module-by-module path, and the jitter's
  values to float rounding. train.epoch_batches calls it, and ``sent`` hands each batch to a GPU
  without the host waiting.

BN's statistics and the contrast mean are summed in another order than PyTorch's, so a step matches
the module-by-module block to float rounding, not bit for bit (tests/test_fused.py). On a GPU the
blocks train module by module (the kernels are CPU code), the batches still come from the CPU kernel,
and a training step never reads a device value on the host (tests/test_fused.py checks the ops it
dispatches), so the CPU makes the next batch while the device trains on this one.

The kernels are compiled on first use for the CPU they run on (torch.utils.cpp_extension, a C++
compiler and ninja) and cached per CPU model, instruction set, torch version and source. Where they
cannot be built (KernelUnavailable), train.prepare_engine trains module by module with the same draws.
The C++ sources are part of every training step's code stamp (stamps.MODULE_FOLDERS).
"""

from __future__ import annotations

import hashlib
import types
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import attention, augment
from .gating import scale
from .se import SEBlock

CPU = torch.device("cpu")
CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = [CSRC / "bn_relu_pool.cpp", CSRC / "color_jitter.cpp", CSRC / "conv_weight_grad.cpp", CSRC / "se_gate.cpp"]
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


class SEGate(torch.autograd.Function):
    """(pooled map, squeeze z, fc1's and fc2's weights) -> (s x pooled, the gates s): SEBlock.excite and
    gating.scale in one kernel (csrc/se_gate.cpp). The gates are returned for SEBlock.last_gates only."""

    @staticmethod
    def forward(ctx, pooled, z, w1, w2):
        out, s, hidden = kernel().se_gate(pooled, z, w1, w2)
        ctx.save_for_backward(pooled, z, w1, w2, hidden, s)
        ctx.mark_non_differentiable(s)
        return out, s

    @staticmethod
    def backward(ctx, grad_out, _grad_s):
        return tuple(kernel().se_gate_backward(grad_out, *ctx.saved_tensors))


# Below this many input channels oneDNN's own weight gradient is faster (the first conv, 3 channels:
# 1.8 ms against 4 ms for a batch of 64 on an AMD EPYC with AVX2); from the second conv on, with 32
# and 64 channels, the product form takes about 5.5 ms where oneDNN takes 7 to 8.
WEIGHT_GRAD_MIN_CHANNELS = 16


class Conv3x3(torch.autograd.Function):
    """A 3 x 3 convolution (stride 1, padding 1) whose weight gradient is the kernel's matrix product.

    The forward pass and the input's gradient are PyTorch's (oneDNN); only the weight's gradient
    (csrc/conv_weight_grad.cpp) and the bias's (a sum) are computed here.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=1)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(grad_out, x, weight, None, [1, 1], [1, 1], [1, 1], False,
                                                         [0, 0], 1, [True, False, False])[0]
        grad_w = kernel().conv3x3_weight_grad(grad_out, x) if ctx.needs_input_grad[1] else None
        grad_b = grad_out.sum(dim=(0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a block the kernel trains (3 x 3, padding 1, stride 1: _fusable checked)."""
    if conv.in_channels < WEIGHT_GRAD_MIN_CHANNELS or conv.groups != 1 or conv.padding_mode != "zeros":
        return conv(x)
    return Conv3x3.apply(x, conv.weight, conv.bias)


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
    pooled, z = BnReluPool.apply(_conv(block.conv, x), block.bn.weight, block.bn.bias, block.bn, squeeze)
    if squeeze:
        if isinstance(gate, SEBlock) and gate.fc1.bias is None and gate.fc2.bias is None:
            out, gate.last_gates = SEGate.apply(pooled, z, gate.fc1.weight, gate.fc2.weight)
            return out
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
    return uniform_dropout(model)


def uniform_dropout(model: nn.Module) -> nn.Module:
    """Draw ``model``'s dropout masks as _dropout does; returns the model.

    Part of the engine with or without the kernel, so a run where the kernel cannot be built draws
    the same masks from the same generator as one where it can.
    """
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.forward = types.MethodType(_dropout, module)
    return model


def _dropout(module: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    """nn.Dropout's forward, with the mask drawn from uniform numbers on a CPU.

    The same distribution (each value kept with probability 1 - p and scaled by 1 / (1 - p)) from the
    same generator, but not the same mask: bernoulli_ draws through a slower path, 0.45 ms for the
    64 x 512 values of the head against 0.11 ms for torch.rand (an AMD EPYC, 2 threads).
    """
    p = module.p
    if not (module.training and 0 < p < 1 and x.device.type == "cpu"):
        return F.dropout(x, p, module.training, module.inplace)
    keep = torch.rand_like(x) >= p
    return x * keep.to(x.dtype).mul_(1 / (1 - p))


# ------------------------------------------------------------------------------------------ batches


def color_jitter(x: torch.Tensor, cfg, g: torch.Generator) -> torch.Tensor:
    """augment.color_jitter through one kernel (a CPU batch): the same draws from ``g``, in the same order."""
    factors, order = augment.jitter_draws(x.shape[0], cfg, g, CPU)
    return kernel().color_jitter(x, factors, order)


def augmented_batch(images: torch.Tensor, idx: torch.Tensor, cfg, mean, std, g: torch.Generator) -> torch.Tensor:
    """normalize(augment.augment_batch(images[idx])), channels last, through one kernel (csrc/color_jitter.cpp).

    The random numbers are drawn here, with augment's own draw functions, from ``g`` in augment's
    order (crop, flip, jitter, rotation), so the batch, and every batch after it, is the
    module-by-module path's. The kernel rounds the rotation's grid as grid_sample's nearest mode does,
    so both take the same pixels.
    """
    h, w = images.shape[2], images.shape[3]
    n = len(idx)
    p = cfg.crop_padding
    offsets = torch.stack(augment.crop_offsets(n, p, g, CPU), dim=1) if p else torch.zeros(n, 2, dtype=torch.long)
    flip = augment.flip_draws(n, cfg.hflip_p, g, CPU)
    factors, order = augment.jitter_draws(n, cfg, g, CPU)
    grid = augment.rotation_grid(n, h, w, cfg.rotation_deg, g, CPU) if cfg.rotation_deg else torch.empty(0)
    return kernel().augment(images, idx, offsets, p, flip, factors, order, grid,
                            torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32))


def sent(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``, copied from pinned memory without waiting: the host goes on to the next batch.

    The pinned block is not reused before its copy has run (PyTorch's pinned-memory cache records the
    copy), so a fresh batch cannot overwrite one still on its way.
    """
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)
