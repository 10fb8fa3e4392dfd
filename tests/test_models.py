import pytest
import torch

from se_attention import attention
from se_attention.cbam import CBAM, SpatialAttention
from se_attention.cnn import MODELS, ReluPoolSqueeze, build_model, multiply_adds, parameter_count
from se_attention.eca import ECABlock, eca_kernel_size
from se_attention.se import SEBlock, se_parameter_count

# Conv, BN and linear parameters of the lesson's CNN, computed from its layer shapes.
LESSON_CNN_PARAMETERS = (3 * 32 * 9 + 32) + 2 * 32 + (32 * 64 * 9 + 64) + 2 * 64 + (64 * 128 * 9 + 128) + 2 * 128 \
    + (2048 * 512 + 512) + (512 * 10 + 10)


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward(name):
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 10)
    out.logsumexp(1).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_parameter_counts_match_the_lesson():
    assert parameter_count(build_model("cnn")) == LESSON_CNN_PARAMETERS
    se_extra = sum(se_parameter_count(c, 16) for c in (32, 64, 128))
    assert se_extra == 2 * 32 * 2 + 2 * 64 * 4 + 2 * 128 * 8
    assert parameter_count(build_model("se")) == LESSON_CNN_PARAMETERS + se_extra


def test_se_parameters_are_the_only_difference():
    cnn = dict(build_model("cnn").named_parameters())
    se = dict(build_model("se").named_parameters())
    extra = set(se) - set(cnn)
    assert set(cnn) <= set(se)
    assert extra and all(".se." in k for k in extra)
    assert all(cnn[k].shape == se[k].shape for k in cnn)


def test_se_block_follows_the_paper():
    block = SEBlock(32, reduction=16)
    assert block.fc1.weight.shape == (2, 32) and block.fc1.bias is None
    assert block.fc2.weight.shape == (32, 2) and block.fc2.bias is None
    x = torch.rand(2, 32, 5, 5)
    y = block(x)
    gates = torch.sigmoid(block.fc2(torch.relu(block.fc1(x.mean((2, 3))))))
    torch.testing.assert_close(y, x * gates[:, :, None, None])
    assert torch.equal(block.last_gates, gates.detach())


def test_reduction_larger_than_channels_is_refused():
    with pytest.raises(ValueError, match="reduction 64 is larger than the 32 channels"):
        build_model("se", se_reduction=64)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet")


def test_multiply_adds_counts_convs_and_linears():
    cnn = build_model("cnn")
    convs = 3 * 32 * 9 * 32 * 32 + 32 * 64 * 9 * 16 * 16 + 64 * 128 * 9 * 8 * 8
    assert multiply_adds(cnn) == convs + 2048 * 512 + 512 * 10
    assert multiply_adds(build_model("se")) > multiply_adds(cnn)


@pytest.mark.parametrize("name", MODELS)
def test_training_order_computes_the_block_as_drawn(name):
    """In training a block pools before ReLU (CNN) or before the rescaling of a channel gate; the
    values must be exactly those of conv -> BN -> ReLU -> [attention] -> pool (or the attention
    after the pool), and the gradients the same up to rounding (the rescaling happens at another
    resolution); test_relu_pool_squeeze_matches_autograd_bitwise checks the fused pass exactly."""
    torch.manual_seed(0)
    block = build_model(name).blocks[1].train()
    x = torch.randn(8, 32, 16, 16)

    def as_drawn(inp):
        act = torch.relu(block.bn(block.conv(inp)))
        if block.placement == attention.AFTER_POOL:
            return block.se(block.pool(act))
        return block.pool(block.se(act))

    fast, drawn = block(x), as_drawn(x)
    assert torch.equal(fast, drawn)
    grads = []
    for out in (fast, drawn):
        block.zero_grad()
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward(retain_graph=True)
        grads.append({k: p.grad.clone() for k, p in block.named_parameters()})
    # Rounding relative to the block's largest gradient: the conv bias's (cancelled by BN) is noise.
    scale = max(g.abs().max().item() for g in grads[1].values())
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-5 * scale, msg=k)


def test_relu_pool_squeeze_matches_autograd_bitwise():
    torch.manual_seed(1)
    x0 = torch.randn(16, 8, 12, 12).contiguous(memory_format=torch.channels_last)
    x0[:, :, :2] = -x0[:, :, :2].abs()  # whole windows at or below zero: their gradient is zero
    g_pooled, g_z = torch.randn(16, 8, 6, 6), torch.randn(16, 8)
    results = []
    for fused in (True, False):
        x = x0.clone().requires_grad_()
        if fused:
            pooled, z = ReluPoolSqueeze.apply(x)
        else:
            r = torch.relu(x)
            pooled, z = torch.nn.functional.max_pool2d(r, 2), r.sum(dim=(2, 3)) / 144
        torch.autograd.backward([pooled, z], [g_pooled, g_z])
        results.append((pooled.detach(), z.detach(), x.grad))
    for a, b in zip(*results):
        assert torch.equal(a, b)


# The zoo: each module's parameter count from its paper's formula, for the lesson's channels.
ZOO_EXTRA_PARAMETERS = {
    "se": sum(2 * c * (c // 16) for c in (32, 64, 128)),
    "se_after_pool": sum(2 * c * (c // 16) for c in (32, 64, 128)),
    "eca": 3 + 3 + 5,
    "cbam": sum(2 * c * (c // 16) + 2 * 7 * 7 for c in (32, 64, 128)),
    "spatial": 3 * 2 * 7 * 7,
}


def test_every_registered_module_has_a_formula():
    assert set(ZOO_EXTRA_PARAMETERS) == set(attention.REGISTRY) == set(MODELS) - {"cnn"}


@pytest.mark.parametrize("name", sorted(ZOO_EXTRA_PARAMETERS))
def test_zoo_parameters_are_the_formula_plus_an_untouched_backbone(name):
    torch.manual_seed(0)
    cnn = dict(build_model("cnn").named_parameters())
    torch.manual_seed(0)
    model = build_model(name)
    params = dict(model.named_parameters())
    assert parameter_count(model) == LESSON_CNN_PARAMETERS + ZOO_EXTRA_PARAMETERS[name]
    # The backbone is the CNN's, parameter for parameter; the attention adds only its own.
    assert set(cnn) <= set(params) and all(".se." in k for k in set(params) - set(cnn))
    assert all(cnn[k].shape == params[k].shape for k in cnn)


@pytest.mark.parametrize("name", sorted(ZOO_EXTRA_PARAMETERS))
def test_zoo_gates_lie_in_zero_one_and_keep_the_shape(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(3, 3, 32, 32)
    sides = iter((32, 16, 8))
    with torch.no_grad():
        for block in model.blocks:
            side = next(sides)
            act = torch.relu(block.bn(block.conv(x)))
            inp = block.pool(act) if block.placement == attention.AFTER_POOL else act
            out = block.se(inp)
            assert out.shape == inp.shape
            gates = [g for g in (getattr(block.se, "last_gates", None),
                                 getattr(getattr(block.se, "spatial", block.se), "last_map", None)) if g is not None]
            assert gates, f"{name}: no gates kept for inspection"
            for g in gates:
                assert ((g > 0) & (g < 1)).all()
            assert block.se.multiply_adds(inp.shape[-1]) > 0
            x = block(x)
            assert x.shape[-1] == side // 2


def test_eca_kernel_sizes_follow_the_paper():
    assert [eca_kernel_size(c) for c in (32, 64, 128)] == [3, 3, 5]
    block = ECABlock(128)
    assert block.conv.weight.shape == (1, 1, 5) and block.conv.bias is None
    x = torch.rand(2, 128, 4, 4)
    z = x.mean((2, 3))
    expected = torch.sigmoid(torch.nn.functional.conv1d(z[:, None], block.conv.weight, padding=2)[:, 0])
    torch.testing.assert_close(block(x), x * expected[:, :, None, None])


def test_cbam_is_channel_then_spatial():
    torch.manual_seed(0)
    block = CBAM(32)
    x = torch.randn(2, 32, 6, 6)
    mlp = lambda d: block.channel.fc2(torch.relu(block.channel.fc1(d)))  # noqa: E731
    mc = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
    x1 = x * mc[:, :, None, None]
    ms = torch.sigmoid(block.spatial.conv(torch.cat([x1.mean(1, keepdim=True), x1.amax(1, keepdim=True)], 1)))
    torch.testing.assert_close(block(x), x1 * ms)
    assert isinstance(block.spatial, SpatialAttention) and block.spatial.conv.weight.shape == (1, 2, 7, 7)


def test_se_after_pool_puts_the_block_after_the_pool():
    model = build_model("se_after_pool")
    assert [b.placement for b in model.blocks] == [attention.AFTER_POOL] * 3
    assert multiply_adds(model) < multiply_adds(build_model("se"))  # it rescales a quarter of the values
