import pytest
import torch

from se_attention.cnn import MODELS, build_model, multiply_adds, parameter_count
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
    """In training a block pools before ReLU (CNN) or before the SE rescaling; the values must be
    exactly those of conv -> BN -> ReLU -> [SE] -> pool, and the gradients the same up to rounding."""
    torch.manual_seed(0)
    block = build_model(name).blocks[1].train()
    x = torch.randn(8, 32, 16, 16)

    def as_drawn(inp):
        return block.pool(block.se(torch.relu(block.bn(block.conv(inp)))))

    fast, drawn = block(x), as_drawn(x)
    assert torch.equal(fast, drawn)
    grads = []
    for out in (fast, drawn):
        block.zero_grad()
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward(retain_graph=True)
        grads.append({k: p.grad.clone() for k, p in block.named_parameters()})
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-5, msg=k)
