import math

import torch

from melos.layers.rotary_attention import RotaryAttention, rotate


def test_rotate_is_a_complex_rotation_of_dimension_pairs():
    """Pairs (i, i + d/2) as complex numbers, multiplied by exp(j * pos * 10000^(-2i/d))."""
    x = torch.randn(5, 8, dtype=torch.float64)
    pos = torch.arange(5) * 3 + 1
    z = torch.complex(x[:, :4], x[:, 4:])
    theta = pos[:, None].double() * 10000.0 ** (-torch.arange(0, 8, 2).double() / 8)
    want = z * torch.polar(torch.ones_like(theta), theta)
    got = rotate(x, pos)
    torch.testing.assert_close(torch.complex(got[:, :4], got[:, 4:]), want)


def test_scores_depend_on_relative_position_only():
    q, k = torch.randn(1, 16), torch.randn(1, 16)
    for m, n, shift in ((3, 10, 5), (0, 7, 1000)):
        a = (rotate(q, torch.tensor([m])) * rotate(k, torch.tensor([n]))).sum()
        b = (rotate(q, torch.tensor([m + shift])) * rotate(k, torch.tensor([n + shift]))).sum()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_attention_is_equivariant_to_a_shift_of_all_positions():
    torch.manual_seed(0)
    attn = RotaryAttention(16, 2).eval()
    x = torch.randn(2, 12, 16)
    torch.testing.assert_close(attn(x, start=0), attn(x, start=377), rtol=1e-4, atol=1e-5)


def test_matches_explicit_softmax_attention_with_padding():
    torch.manual_seed(1)
    attn = RotaryAttention(8, 2).eval()
    x = torch.randn(2, 6, 8)
    valid = torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)
    q, k, v = attn.qkv(x).view(2, 6, 3, 2, 4).permute(2, 0, 3, 1, 4)
    pos = torch.arange(6)
    scores = rotate(q, pos) @ rotate(k, pos).transpose(-1, -2) / math.sqrt(4)
    scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, 8)
    torch.testing.assert_close(attn(x, valid), attn.out(y), rtol=1e-5, atol=1e-6)
    # and the padded clip's real frames equal the clip alone
    torch.testing.assert_close(attn(x, valid)[1, :4], attn(x[1:, :4])[0], rtol=1e-5, atol=1e-6)
