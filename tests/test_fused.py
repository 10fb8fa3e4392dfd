"""The engine's fused kernels (se_attention.fused) against PyTorch's module-by-module block.

The kernel sums BN's statistics in another order, so values agree to float rounding, not bit for bit:
each comparison allows a few units in the last place of the largest value it compares.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from se_attention import fused
from se_attention.cnn import build_model

pytestmark = pytest.mark.skipif(not fused.available(), reason="no C++ compiler here to build the fused kernel")


def close(a: torch.Tensor, b: torch.Tensor, ulps: float = 64) -> bool:
    """Equal up to `ulps` float32 epsilons of the larger magnitude of the two tensors."""
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() <= ulps * torch.finfo(torch.float32).eps * scale


def one_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    return logits


@pytest.mark.parametrize("name", ["cnn", "se", "eca", "se_after_pool"])
def test_a_training_step_matches_the_module_by_module_block(name):
    torch.manual_seed(0)
    # No dropout: the engine draws its mask otherwise (test_dropout_keeps_each_value_with_probability_1_minus_p).
    reference = build_model(name, dropout=0.0).to(memory_format=torch.channels_last).train()
    candidate = fused.accelerate(copy.deepcopy(reference))
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,))
    assert close(one_step(reference, x, y), one_step(candidate, x, y))
    # Gradients pass through a different summation order in every block, and some are tiny (a hidden
    # unit of an SE block that is nearly dead): judge each against the largest gradient of the model.
    # A real fault (a wrong window maximum, a lost term) is off by the gradient's own size.
    largest = max(p.grad.abs().max().item() for p in reference.parameters())
    for (pname, p), q in zip(reference.named_parameters(), candidate.parameters()):
        assert (p.grad - q.grad).abs().max() <= 1e-3 * p.grad.abs().max() + 1e-5 * largest, pname
    for (bname, b), c in zip(reference.named_buffers(), candidate.buffers()):
        assert torch.equal(b, c) if b.dtype == torch.long else close(b, c), bname


def test_ties_send_the_gradient_to_the_first_maximum_like_pytorch():
    """Integer inputs make whole windows tie; the pool's gradient must go where PyTorch sends it."""
    torch.manual_seed(1)
    x = torch.randint(-2, 3, (4, 8, 8, 8)).float().contiguous(memory_format=torch.channels_last)
    bn_ref, bn_new = torch.nn.BatchNorm2d(8), torch.nn.BatchNorm2d(8)
    xr, xn = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(4, 8, 4, 4)
    torch.relu(F.max_pool2d(bn_ref(xr), 2)).backward(g)
    pooled, _ = fused.BnReluPool.apply(xn, bn_new.weight, bn_new.bias, bn_new, False)
    pooled.backward(g)
    assert close(xr.grad, xn.grad, ulps=512) and close(bn_ref.weight.grad, bn_new.weight.grad, ulps=512)


def test_the_squeeze_is_the_mean_of_the_relu_output():
    torch.manual_seed(2)
    x = torch.randn(4, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    bn = torch.nn.BatchNorm2d(16)
    pooled, z = fused.BnReluPool.apply(x, bn.weight, bn.bias, copy.deepcopy(bn), True)
    out = torch.relu(bn(x))
    assert close(z, out.mean(dim=(2, 3))) and close(pooled, F.max_pool2d(out, 2))


def test_eval_mode_and_spatial_attention_keep_the_blocks_own_path_bit_for_bit():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    for name in ("se", "cbam"):
        reference = build_model(name).to(memory_format=torch.channels_last)
        candidate = fused.accelerate(copy.deepcopy(reference))
        reference.eval(), candidate.eval()
        assert torch.equal(reference(x), candidate(x)), name
    reference = build_model("cbam", dropout=0.0).train()  # dropout: the engine draws its mask otherwise
    candidate = fused.accelerate(copy.deepcopy(reference))
    assert torch.equal(one_step(reference, x, torch.zeros(4, dtype=torch.long)),
                       one_step(candidate, x, torch.zeros(4, dtype=torch.long)))


def test_the_kernel_refuses_odd_maps_and_other_types_by_name():
    bn = torch.nn.BatchNorm2d(4)
    with pytest.raises(RuntimeError, match="expected even H and W, found"):
        fused.kernel().bn_relu_pool(torch.randn(2, 4, 5, 6), bn.weight, bn.bias, bn.running_mean,
                                    bn.running_var, 0.1, 1e-5, False)
    with pytest.raises(RuntimeError, match="expected a float32 CPU tensor"):
        fused.kernel().bn_relu_pool(torch.randn(2, 4, 6, 6, dtype=torch.float64), bn.weight, bn.bias,
                                    bn.running_mean, bn.running_var, 0.1, 1e-5, False)


def test_a_machine_that_cannot_build_the_kernel_gets_a_clear_error(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Ninja is required to load C++ extensions")

    fused.kernel.cache_clear()
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    try:
        with pytest.raises(fused.KernelUnavailable, match="cannot build bn_relu_pool.cpp, color_jitter.cpp, conv_weight_grad.cpp, se_gate.cpp: .*Ninja is required"):
            fused.accelerate(build_model("se"))
        assert not fused.available()
    finally:
        fused.kernel.cache_clear()


def test_the_fused_colour_jitter_draws_and_computes_what_augment_does():
    from se_attention import augment

    cfg = augment.AugmentConfig()
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8).float() / 255
    x[:4] = 0.5  # grey images: any hue, chroma 0
    g_ref, g_new = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    expected = augment.color_jitter(x.clone(), cfg, g_ref)
    got = fused.color_jitter(x.clone(), cfg, g_new)
    assert torch.equal(g_ref.get_state(), g_new.get_state())  # the same draws: the next batch is the same too
    assert (expected - got).abs().max() <= 16 * torch.finfo(torch.float32).eps
    assert got.min() >= 0 and got.max() <= 1


def test_the_kernels_batches_are_the_module_by_module_batches():
    """What a machine without a C++ compiler trains on: the same batches, to the jitter's rounding."""
    from se_attention.augment import AugmentConfig
    from se_attention.train import Split, epoch_batches

    split = Split(torch.randint(0, 256, (130, 3, 32, 32), dtype=torch.uint8), torch.arange(130) % 10)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    g_modules, g_kernel = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    modules = list(epoch_batches(split, AugmentConfig(), mean, std, 64, g_modules, kernel=False))
    kernel = list(epoch_batches(split, AugmentConfig(), mean, std, 64, g_kernel))
    assert torch.equal(g_modules.get_state(), g_kernel.get_state())
    assert [len(y) for _, y in kernel] == [64, 64, 2]
    for (xa, ya), (xb, yb) in zip(modules, kernel):
        assert xa.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(ya, yb) and xb.is_contiguous(memory_format=torch.channels_last)
        # The same pixels (crop, flip and rotation are gathers) and the jitter's rounding, times 4 (std 0.25).
        assert (xa - xb).abs().max() <= 32 * torch.finfo(torch.float32).eps / 0.25


def test_the_colour_jitter_kernel_refuses_a_bad_batch_by_name():
    with pytest.raises(RuntimeError, match=r"expected a float32 CPU batch N x 3 x H x W, found Float \[2, 4, 8, 8\]"):
        fused.kernel().color_jitter(torch.rand(2, 4, 8, 8), torch.ones(2, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(RuntimeError, match=r"expected factors and order of shape \[2, 4\]"):
        fused.kernel().color_jitter(torch.rand(2, 3, 8, 8), torch.ones(3, 4), torch.zeros(2, 4, dtype=torch.long))


def test_a_block_that_falls_back_runs_its_conv_once():
    calls = []
    for name, train in (("se", False), ("cbam", True)):
        model = fused.accelerate(build_model(name)).train(train)
        model.blocks[0].conv.register_forward_hook(lambda *args: calls.append(name))
        model(torch.randn(2, 3, 32, 32))
    assert calls == ["se", "cbam"]


def test_the_result_does_not_depend_on_the_number_of_threads():
    x = torch.randn(16, 32, 16, 16)  # NCHW-contiguous: the kernel takes any layout
    bn = torch.nn.BatchNorm2d(32)
    grads = torch.randn(16, 32, 8, 8), torch.randn(16, 32)
    threads, results = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            xi = x.clone().requires_grad_()
            pooled, z = fused.BnReluPool.apply(xi, bn.weight, bn.bias, copy.deepcopy(bn), True)
            torch.autograd.backward((pooled, z), grads)
            results.append((pooled, z, xi.grad))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))
    reference = torch.nn.BatchNorm2d(32)
    assert close(results[0][0], F.max_pool2d(torch.relu(reference(x)), 2))


def test_cumulative_batchnorm_momentum_matches_pytorch():
    torch.manual_seed(4)
    reference = build_model("cnn").train()
    for block in reference.blocks:
        block.bn.momentum = None  # running statistics as a cumulative average
    candidate = fused.accelerate(copy.deepcopy(reference))
    for _ in range(3):
        x = torch.randn(4, 3, 32, 32)
        reference(x), candidate(x)
    for (bname, b), c in zip(reference.named_buffers(), candidate.buffers()):
        assert torch.equal(b, c) if b.dtype == torch.long else close(b, c), bname


def test_the_kernel_refuses_statistics_of_another_size_by_name():
    bn = torch.nn.BatchNorm2d(4)
    with pytest.raises(RuntimeError, match=r"expected weight of 8 float32 values on the CPU, found Float \[4\]"):
        fused.kernel().bn_relu_pool(torch.randn(2, 8, 4, 4), bn.weight, bn.bias, bn.running_mean,
                                    bn.running_var, 0.1, 1e-5, False)


@pytest.mark.parametrize("shape", [(5, 16, 8, 8), (3, 32, 6, 10), (64, 64, 8, 8)])
def test_the_weight_gradient_is_onednns_to_float_rounding(shape):
    n, c, h, w = shape
    torch.manual_seed(6)
    x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(24, c, 3, 3).contiguous(memory_format=torch.channels_last)
    grad_out = torch.randn(n, 24, h, w)  # NCHW-contiguous: the kernel takes any layout
    expected = torch.ops.aten.convolution_backward(grad_out, x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                                                   [False, True, False])[1]
    got = fused.kernel().conv3x3_weight_grad(grad_out, x)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last)
    # Sums of n h w products: allow rounding that grows with their count.
    assert close(got, expected, ulps=4 * n * h * w)


def test_the_weight_gradient_does_not_depend_on_the_number_of_threads():
    torch.manual_seed(7)
    x, grad_out = torch.randn(20, 32, 8, 8), torch.randn(20, 16, 8, 8)
    threads, results = torch.get_num_threads(), []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(fused.kernel().conv3x3_weight_grad(grad_out, x))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(results[0], r) for r in results[1:])


def test_the_conv_function_gives_pytorchs_gradients_and_skips_the_images_gradient():
    torch.manual_seed(8)
    conv = torch.nn.Conv2d(16, 8, 3, padding=1)
    x = torch.randn(4, 16, 8, 8, requires_grad=True)
    g = torch.randn(4, 8, 8, 8)
    conv(x).backward(g)
    expected = x.grad, conv.weight.grad, conv.bias.grad
    x.grad = conv.weight.grad = conv.bias.grad = None
    fused.Conv3x3.apply(x, conv.weight, conv.bias).backward(g)
    assert all(close(a, b, ulps=1024) for a, b in zip(expected, (x.grad, conv.weight.grad, conv.bias.grad)))
    images = torch.randn(4, 16, 8, 8)  # a network's input: no gradient wanted, none computed
    fused.Conv3x3.apply(images, conv.weight, conv.bias).sum().backward()
    assert images.grad is None


def test_the_weight_gradient_refuses_a_bad_pair_by_name():
    with pytest.raises(RuntimeError, match=r"conv3x3_weight_grad: expected a float32 CPU input N x C x H x W, found Double"):
        fused.kernel().conv3x3_weight_grad(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"expected a float32 CPU gradient 2 x O x 8 x 8, found Float \[2, 4, 4, 4\]"):
        fused.kernel().conv3x3_weight_grad(torch.randn(2, 4, 4, 4), torch.randn(2, 4, 8, 8))


def identity_jitter(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors under which the jitter leaves a grey image exactly as it is (a grey pixel has no hue)."""
    factors = torch.tensor([[1.0, 1.0, 1.0, 0.0]]).repeat(n, 1)
    return factors, torch.arange(4).repeat(n, 1)


def test_the_augment_kernel_takes_the_pixels_grid_sample_takes_even_on_a_pixels_edge():
    torch.manual_seed(9)
    n = 6
    grey = torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8).expand(n, 3, 16, 16).contiguous()
    grid = torch.rand(n, 16, 16, 2) * 2.4 - 1.2  # some samples fall outside: the zero fill
    # (g + 1) * 8 - 0.5 == k + 0.5 exactly: a tie that rounds to the even pixel in grid_sample
    grid[0, :, :, 0] = (torch.arange(16, dtype=torch.float32) + 1.0) / 8 - 1
    grid = grid.transpose(1, 2).contiguous().transpose(1, 2)  # another layout: the kernel reads it by its strides
    mean, std = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.25, 2.0])
    got = fused.kernel().augment(grey, torch.arange(n), torch.zeros(n, 2, dtype=torch.long), 0,
                                 torch.zeros(n, dtype=torch.bool), *identity_jitter(n), grid, mean, std)
    images = grey.float().div_(255)
    expected = F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    assert torch.equal(got, (expected - mean[:, None, None]) / std[:, None, None])


def test_the_augment_kernel_crops_and_flips_as_augment_does():
    from se_attention import augment

    torch.manual_seed(10)
    n = 8
    grey = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8).expand(n, 3, 8, 8).contiguous(
        memory_format=torch.channels_last)
    offsets = torch.randint(0, 5, (n, 2))
    flip = torch.rand(n) < 0.5
    got = fused.kernel().augment(grey, torch.arange(n), offsets, 2, flip, *identity_jitter(n), torch.empty(0),
                                 torch.zeros(3), torch.ones(3))
    padded = F.pad(grey, (2, 2, 2, 2))
    crops = torch.stack([padded[i, :, dy : dy + 8, dx : dx + 8] for i, (dy, dx) in enumerate(offsets.tolist())])
    expected = torch.where(flip[:, None, None, None], crops.flip(-1), crops).float().div_(255)
    assert torch.equal(got, expected)
    # and the whole augmentation draws what augment draws: the generators end in the same state
    g_ref, g_new = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    augment.augment_batch(grey[:4].contiguous(), augment.AugmentConfig(), g_ref)
    fused.augmented_batch(grey, torch.arange(4), augment.AugmentConfig(), (0.5,) * 3, (0.25,) * 3, g_new)
    assert torch.equal(g_ref.get_state(), g_new.get_state())


def test_the_augment_kernel_refuses_bad_input_by_name():
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    args = [torch.zeros(2, 2, dtype=torch.long), 0, torch.zeros(2, dtype=torch.bool), *identity_jitter(2),
            torch.empty(0), torch.zeros(3), torch.ones(3)]
    with pytest.raises(RuntimeError, match=r"augment: index holds 4, expected 0 to 3"):
        fused.kernel().augment(images, torch.tensor([0, 4]), *args)
    with pytest.raises(RuntimeError, match=r"augment: expected uint8 CPU images M x 3 x H x W, found Float"):
        fused.kernel().augment(images.float(), torch.tensor([0, 1]), *args)
    args[5] = torch.zeros(2, 8, 4, 2)
    with pytest.raises(RuntimeError, match=r"augment: expected grid of shape \[2, 8, 8, 2\]"):
        fused.kernel().augment(images, torch.tensor([0, 1]), *args)


def test_dropout_keeps_each_value_with_probability_1_minus_p():
    model = fused.accelerate(build_model("cnn")).train()
    assert model.dropout.p == 0.5
    x = (torch.rand(64, 512) + 1).requires_grad_()
    out = model.dropout(x)
    kept = out != 0
    assert torch.equal(out[kept], 2 * x[kept])  # scaled by 1 / (1 - p), as nn.Dropout scales
    assert abs(kept.float().mean().item() - 0.5) < 0.02  # 32,768 draws: the standard error is 0.003
    out.backward(torch.ones_like(out))
    assert torch.equal(x.grad, 2 * kept.float())
    assert torch.equal(model.eval().dropout(x), x)  # evaluation: the identity, as nn.Dropout


def test_batches_for_a_gpu_are_the_cpu_batches_sent_without_waiting():
    """On the meta device (no GPU here): the same draws as on the CPU, every copy non-blocking."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from se_attention.augment import AugmentConfig
    from se_attention.train import Split, epoch_batches

    class Copies(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.blocking = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten._to_copy.default and not kwargs.get("non_blocking", False):
                self.blocking.append(kwargs)
            return func(*args, **kwargs)

    split = Split(torch.randint(0, 256, (70, 3, 32, 32), dtype=torch.uint8), torch.arange(70) % 10)
    stats = (0.5,) * 3, (0.25,) * 3
    g_cpu, g_dev = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    on_cpu = list(epoch_batches(split, AugmentConfig(), *stats, 64, g_cpu))
    with Copies() as mode:
        sent = list(epoch_batches(split, AugmentConfig(), *stats, 64, g_dev, torch.device("meta")))
    assert mode.blocking == []
    assert torch.equal(g_cpu.get_state(), g_dev.get_state())
    for (xa, ya), (xb, yb) in zip(on_cpu, sent):
        assert xb.device.type == yb.device.type == "meta" and xb.shape == xa.shape and yb.shape == ya.shape
        assert xb.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="expected the images and the generator there, found them on meta and cpu"):
        next(epoch_batches(Split(split.x.to("meta"), split.y), AugmentConfig(), *stats, 64, g_dev))


# Ops after which a GPU's host would wait for the device: a value read back (item, nonzero's size, ...).
WAITS_FOR_THE_DEVICE = {"_local_scalar_dense", "item", "nonzero", "is_nonzero", "equal", "allclose", "masked_select",
                        "unique", "_unique", "_unique2", "unique_consecutive", "unique_dim", "repeat_interleave"}


@pytest.mark.parametrize("name", ["cnn", "se"])
def test_a_training_step_on_a_gpu_never_waits_for_the_device(name):
    """The step as a GPU runs it (module by module), traced on the CPU: no op reads a device value back."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from se_attention.train import make_optimizer

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(func.__name__.split(".")[0])
            return func(*args, **(kwargs or {}))

    model = build_model(name).to(memory_format=torch.channels_last).train()  # no CPU kernels: as on a GPU
    optimizer = make_optimizer(model, 1e-3)
    x, y = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last), torch.randint(0, 10, (4,))
    with Ops() as ops:
        for _ in range(2):  # the second step: Adam's state exists
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    assert "convolution" in ops.names and "_fused_adam_" in ops.names  # the trace saw the whole step
    assert ops.names & WAITS_FOR_THE_DEVICE == set()


def test_the_se_gate_kernel_is_se_blocks_excitation_and_rescaling():
    from se_attention.gating import scale
    from se_attention.se import SEBlock

    torch.manual_seed(11)
    block = SEBlock(32, 16)
    pooled = torch.rand(8, 32, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    z = torch.rand(8, 32, requires_grad=True)
    grad = torch.randn(8, 32, 4, 4)
    scale(pooled, block.excite(z)).backward(grad)
    expected = [t.grad.clone() for t in (pooled, z, block.fc1.weight, block.fc2.weight)]
    for t in (pooled, z, block.fc1.weight, block.fc2.weight):
        t.grad = None
    out, gates = fused.SEGate.apply(pooled, z, block.fc1.weight, block.fc2.weight)
    assert close(out, scale(pooled, block.excite(z))) and close(gates, block.last_gates)
    out.backward(grad)
    got = [t.grad for t in (pooled, z, block.fc1.weight, block.fc2.weight)]
    assert all(close(a, b, ulps=256) for a, b in zip(expected, got))


def test_the_se_gate_kernel_refuses_weights_of_another_block_by_name():
    z, pooled = torch.rand(2, 32), torch.rand(2, 32, 4, 4)
    with pytest.raises(RuntimeError,
                       match=r"expected fc2's weight of shape \[32, 2\] \(float32, CPU\), found Float \[64, 2\]"):
        fused.kernel().se_gate(pooled, z, torch.rand(2, 32), torch.rand(64, 2))
    with pytest.raises(RuntimeError, match=r"expected the pooled map of shape \[2, 32, H, W\]"):
        fused.kernel().se_gate(torch.rand(2, 16, 4, 4), z, torch.rand(2, 32), torch.rand(32, 2))
