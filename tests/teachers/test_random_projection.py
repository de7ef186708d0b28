"""Random-projection quantizer: frame stacking, nearest-codeword maths, stats, seeding, I/O."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from melos.teachers.random_projection import (MelTokenizer, RandomProjectionQuantizer, RandomProjectionTokenizer,
                                              stack_frames)


def _fitted(input_dim=512, seed=0, **kw) -> RandomProjectionQuantizer:
    q = RandomProjectionQuantizer(input_dim=input_dim, seed=seed, **kw)
    q.set_stats(torch.linspace(-2, 2, input_dim), torch.linspace(0.5, 3, input_dim))
    return q


def test_stack_frames_by_hand():
    x = torch.arange(9 * 2).reshape(1, 9, 2)  # frame t = [2t, 2t + 1]
    out = stack_frames(x, 4)
    assert out.shape == (1, 2, 8)
    assert out[0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert out[0, 1].tolist() == [8, 9, 10, 11, 12, 13, 14, 15]  # frame 8 (tail) dropped
    assert stack_frames(torch.zeros(2, 3, 5), 4).shape == (2, 0, 20)


def test_tokens_match_brute_force_nearest_neighbour():
    q = _fitted()
    x = 3 * torch.randn(4, 64, 512, generator=torch.Generator().manual_seed(1))
    tokens = q(x)
    assert tokens.dtype == torch.int64 and tokens.shape == (4, 64)
    assert tokens.min() >= 0 and tokens.max() < q.codebook_size

    z = (x.double().numpy() - q.mean.double().numpy()) / (q.std.double().numpy() + q.eps)
    p = z @ q.projection.double().numpy()
    p /= np.linalg.norm(p, axis=-1, keepdims=True)
    c = q.codebook.double().numpy()
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    dist = ((p[..., None, :] - c) ** 2).sum(-1)  # [B, T, K]
    ref = dist.argmin(-1)
    mismatch = tokens.numpy() != ref
    # Only float32-vs-float64 near-ties may differ; with this seed there are none.
    assert not mismatch.any()
    assert len(np.unique(ref)) > 100  # uses many codewords, not a degenerate constant


def test_codeword_preimage_maps_to_codeword():
    q = _fitted()
    a = q.projection.double()
    ks = torch.tensor([0, 17, 4095, 8191])
    # x @ A = s * c_k with x = s * c_k @ pinv(A), since A has full column rank.
    z = torch.tensor([[0.3], [1.0], [7.0], [50.0]], dtype=torch.float64) * (
        q.codebook[ks].double() @ torch.linalg.pinv(a)
    )
    x = q.mean.double() + z * (q.std.double() + q.eps)
    assert q(x.float()[None]).squeeze(0).tolist() == ks.tolist()


def test_known_projection_identity():
    q = RandomProjectionQuantizer(input_dim=16, code_dim=16, codebook_size=64)
    q.projection.copy_(torch.eye(16))
    q.set_stats(torch.zeros(16), torch.ones(16))
    x = 2.5 * q.codebook[[5, 9, 63]]
    assert q(x[None])[0].tolist() == [5, 9, 63]


def test_invariant_to_positive_scaling_of_normalised_input():
    q = _fitted()
    x = torch.randn(2, 50, 512, generator=torch.Generator().manual_seed(2))
    z = (x - q.mean) / (q.std + q.eps)
    tokens = q(x)
    for scale in (0.01, 7.0):
        assert torch.equal(q(q.mean + scale * z * (q.std + q.eps)), tokens)
    assert not torch.equal(q(q.mean - z * (q.std + q.eps)), tokens)  # negation is not invariant


def test_construction_leaves_global_rng_untouched_and_is_seeded():
    state = torch.random.get_rng_state()
    a = RandomProjectionQuantizer(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b, c = RandomProjectionQuantizer(seed=3), RandomProjectionQuantizer(seed=4)
    assert torch.equal(a.projection, b.projection) and torch.equal(a.codebook, b.codebook)
    assert not torch.equal(a.projection, c.projection)
    assert not torch.equal(a.codebook, c.codebook)


def test_buffer_distributions():
    q = RandomProjectionQuantizer()
    torch.testing.assert_close(q.codebook.norm(dim=-1), torch.ones(8192))
    xavier_std = (2 / (512 + 16)) ** 0.5
    assert abs(q.projection.std().item() / xavier_std - 1) < 0.05


def test_fit_stats_matches_numpy():
    gen = torch.Generator().manual_seed(5)
    shapes = [(2, 30), (1, 7), (3, 11)]
    batches = [100 + 4 * torch.randn(b, t, 512, generator=gen) for b, t in shapes]
    q = RandomProjectionQuantizer()
    q.fit_stats(iter(batches))
    flat = np.concatenate([b.reshape(-1, 512).double().numpy() for b in batches])
    np.testing.assert_allclose(q.mean.numpy(), flat.mean(0), rtol=1e-5, atol=0)
    np.testing.assert_allclose(q.std.numpy(), flat.std(0), rtol=1e-5, atol=0)
    assert bool(q.fitted)


def test_unfitted_raises_and_empty_fit_raises():
    q = RandomProjectionQuantizer()
    with pytest.raises(RuntimeError, match="not fitted"):
        q(torch.randn(1, 2, 512))
    with pytest.raises(ValueError):
        q.fit_stats([])


def test_safetensors_round_trip_is_exact(tmp_path):
    q = _fitted(seed=7)
    path = tmp_path / "rpq.safetensors"
    save_file(q.state_dict(), str(path))
    r = RandomProjectionQuantizer(seed=0)
    r.load_state_dict(load_file(str(path)))
    for name, value in q.state_dict().items():
        assert torch.equal(r.state_dict()[name], value), name
    assert set(q.state_dict()) == {"projection", "codebook", "mean", "std", "fitted"}
    x = torch.randn(2, 10, 512)
    assert torch.equal(q(x), r(x))


def test_bf16_autocast_gives_float32_tokens():
    q = _fitted()
    x = torch.randn(2, 20, 512)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens = q(x)
    assert torch.equal(tokens, q(x))


def test_mel_tokenizer_shapes():
    tok = MelTokenizer()
    gen = torch.Generator().manual_seed(6)
    audio = 0.1 * torch.randn(2, 2 * 24000, generator=gen)
    tok.fit_stats([audio, 0.1 * torch.randn(1, 30000, generator=gen)])
    n_tokens = tok.log_mel.n_frames(audio.shape[-1]) // 4
    assert n_tokens == tok.n_frames(audio.shape[-1]) == 50
    feats = tok.features(audio)
    tokens = tok(audio)
    assert feats.shape == (2, n_tokens, 512) and tokens.shape == (2, n_tokens)
    assert torch.equal(tokens, tok.quantizer(feats))
    assert torch.equal(feats[:, 0, 128:256], tok.log_mel(audio)[:, 1])  # stacking order


def test_multi_codebook_tokenizer_is_k_independent_quantizers():
    tok = RandomProjectionTokenizer(n_codebooks=3, codebook_size=64, seed=5)
    gen = torch.Generator().manual_seed(8)
    batches = [0.1 * torch.randn(2, 24000, generator=gen), 0.3 * torch.randn(1, 15000, generator=gen)]
    tok.fit_stats(batches)
    frames = torch.cat([tok.log_mel(b).reshape(-1, 128) for b in batches]).double()
    audio = 0.2 * torch.randn(2, 12000, generator=gen)
    tokens = tok(audio)
    assert tokens.shape == (2, 3, 1 + 12000 // 320) == (2, 3, tok.n_frames(12000))
    for k in range(3):  # each codebook: the plain quantizer with seed 5 + k and the pooled statistics
        reference = RandomProjectionQuantizer(128, 16, 64, seed=5 + k)
        reference.set_stats(frames.mean(0), frames.std(0, correction=0))
        assert torch.equal(tokens[:, k], reference(tok.log_mel(audio)))
    assert all(len(torch.unique(tokens[:, k])) > 4 for k in range(3))  # not one code for everything


def test_unfitted_multi_codebook_tokenizer_refuses():
    with pytest.raises(RuntimeError, match="not fitted"):
        RandomProjectionTokenizer(n_codebooks=2, codebook_size=16)(torch.zeros(1, 4000))
