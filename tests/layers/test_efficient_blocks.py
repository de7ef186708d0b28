import numpy as np
import pytest
import torch

from melos.layers.conv_modules import DepthwiseConv
from melos.layers.efficient_blocks import BranchformerBlock, ConformerBlock
from melos.layers.token_mixers import MIXERS


def test_depthwise_conv_is_a_per_channel_correlation():
    conv = DepthwiseConv(3, 5)
    x = torch.randn(1, 20, 3)
    got = conv(x)[0].detach().numpy()
    w, b = conv.conv.weight.detach().numpy()[:, 0], conv.conv.bias.detach().numpy()
    for c in range(3):
        want = np.correlate(np.pad(x[0, :, c].numpy(), 2), w[c], mode="valid") + b[c]
        np.testing.assert_allclose(got[:, c], want, rtol=1e-5, atol=1e-5)


def block(kind: str, mixer: str) -> torch.nn.Module:
    if kind == "branchformer":
        return BranchformerBlock(16, 2, mixer, summary_hidden=8, cgmlp_units=32, kernel_size=7)
    return ConformerBlock(16, 2, mixer, summary_hidden=8, ffn_hidden=32, kernel_size=7)


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("kind", ["branchformer", "conformer"])
def test_blocks_keep_shape_and_ignore_padding(kind, mixer):
    torch.manual_seed(0)
    layer = block(kind, mixer).eval()
    lengths = torch.randint(3, 40, (4,)).tolist()
    T = max(lengths)
    x = torch.randn(4, T, 16)
    valid = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    out = layer(x, valid)
    assert out.shape == x.shape
    for b, n in enumerate(lengths):
        torch.testing.assert_close(out[b, :n], layer(x[b : b + 1, :n])[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("kind", ["branchformer", "conformer"])
def test_blocks_have_finite_gradients_everywhere(kind, mixer):
    torch.manual_seed(1)
    layer = block(kind, mixer).train()
    T = int(torch.randint(5, 50, ()).item())
    x = torch.randn(3, T, 16, requires_grad=True)
    valid = torch.arange(T)[None] < torch.tensor([T, T // 2, 1])[:, None]
    (layer(x, valid)[valid] ** 2).mean().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
