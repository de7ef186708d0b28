import numpy as np
import pytest
import torch

from melos.layers.summary_mixing import SummaryMixing, masked_mean


def padded(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(x) for x in items)
    x = torch.stack([torch.cat([i, torch.randn(T - len(i), i.shape[1]) * 100]) for i in items])  # loud junk in the padding
    valid = torch.stack([torch.arange(T) < len(i) for i in items])
    return x, valid


def test_masked_mean_counts_valid_frames_only():
    x = torch.randn(2, 6, 3)
    valid = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    got = masked_mean(x, valid)
    np.testing.assert_allclose(got[0, 0], x[0, :3].numpy().mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got[1, 0], x[1].numpy().mean(0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("lite", [False, True])
def test_padded_batch_equals_each_unpadded_item(lite):
    torch.manual_seed(0)
    sm = SummaryMixing(8, 8 if lite else 6, lite=lite).eval()
    items = [torch.randn(n, 8) for n in (5, 9, 2)]
    x, valid = padded(items)
    out = sm(x, valid)
    for b, item in enumerate(items):
        torch.testing.assert_close(out[b, : len(item)], sm(item[None])[0], rtol=1e-5, atol=1e-6)


def test_matches_the_formula():
    """h_t = GELU(W_c [GELU(W_f x_t), mean_s GELU(W_s x_s)] + b_c), computed by hand in numpy."""
    torch.manual_seed(1)
    sm = SummaryMixing(4, 3).eval()
    x = torch.randn(1, 7, 4)
    gelu = lambda z: torch.nn.functional.gelu(torch.from_numpy(z)).numpy()  # noqa: E731
    W = {n: (m[0].weight.detach().double().numpy(), m[0].bias.detach().double().numpy())
         for n, m in (("f", sm.local), ("s", sm.summary), ("c", sm.combine))}
    xs = x[0].double().numpy()
    f = gelu(xs @ W["f"][0].T + W["f"][1])
    s = gelu(xs @ W["s"][0].T + W["s"][1]).mean(0, keepdims=True).repeat(7, 0)
    want = gelu(np.concatenate([f, s], 1) @ W["c"][0].T + W["c"][1])
    np.testing.assert_allclose(sm(x)[0].detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_output_at_a_frame_ignores_the_order_of_the_others():
    torch.manual_seed(2)
    sm = SummaryMixing(8, 8).eval()
    x = torch.randn(1, 10, 8)
    perm = torch.randperm(10)
    torch.testing.assert_close(sm(x[:, perm]), sm(x)[:, perm], rtol=1e-5, atol=1e-6)


def test_lite_needs_hidden_equal_to_dim():
    with pytest.raises(ValueError, match="hidden"):
        SummaryMixing(8, 4, lite=True)
