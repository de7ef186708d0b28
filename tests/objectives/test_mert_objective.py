"""Span masking statistics, the MERT losses on hand-computed cases, and the noise mixture."""

import math

import numpy as np
import pytest
import torch

from melos.objectives.masking import span_mask
from melos.objectives.mert_loss import MERTHeads, acoustic_loss, cqt_loss, feature_penalty
from melos.objectives.noise_mixture import in_batch_mixture


def expected_masked_fraction(n_frames: int, mask_prob: float, span: int, min_spans: int = 2) -> float:
    """Closed form: frame t stays unmasked iff none of the w_t starts covering it is drawn,
    P = C(M - w_t, n) / C(M, n) for M positions and n starts; n takes two values weighted by u."""
    positions = n_frames - span + 1
    base = mask_prob * n_frames / span
    total = 0.0
    for n, weight in ((math.floor(base), 1 - (base % 1)), (math.floor(base) + 1, base % 1)):
        n = min(max(min_spans, n), positions)
        for t in range(n_frames):
            covering = min(t, positions - 1) - max(0, t - span + 1) + 1
            total += weight * (1 - math.comb(positions - covering, n) / math.comb(positions, n))
    return total / n_frames


def test_span_mask_fraction_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    mask = span_mask(2000, 374, mask_prob=0.8, span=5, generator=g)  # 5 s at 75 Hz
    expected = expected_masked_fraction(374, 0.8, 5)
    assert 0.56 < expected < 0.60  # the "about 58%" of the spec
    assert mask.float().mean().item() == pytest.approx(expected, abs=0.004)


def test_span_mask_runs_and_reproducibility():
    mask = span_mask(50, 100, mask_prob=0.3, span=5, generator=torch.Generator().manual_seed(1))
    for row in mask.numpy():
        padded = np.concatenate([[0], row.astype(int), [0]])
        edges = np.flatnonzero(np.diff(padded))
        assert (edges[1::2] - edges[::2] >= 5).all()  # every masked run is at least one span
    again = span_mask(50, 100, mask_prob=0.3, span=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mask, again)
    assert not span_mask(2, 4, span=5).any()


def small_heads() -> MERTHeads:
    heads = MERTHeads(hidden_size=2, n_codebooks=2, codebook_size=3, final_dim=2, n_cqt_bins=2)
    with torch.no_grad():
        heads.final_proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))
        heads.final_proj.bias.zero_()
        heads.codewords.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
                                            [[2.0, 0.0], [0.0, -1.0], [-1.0, 0.0]]]))
        heads.cqt_proj.weight.copy_(torch.eye(2))
        heads.cqt_proj.bias.zero_()
    return heads


def test_acoustic_loss_hand_computed():
    heads = small_heads()
    hidden = torch.tensor([[[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]]])  # (B=1, T=3, H=2)
    tokens = torch.tensor([[[2, 0, 1], [0, 1, 2]]])  # (B, K=2, T)
    mask = torch.tensor([[True, False, True]])
    loss, accuracy = acoustic_loss(heads, hidden, tokens, mask, temperature=0.1)

    def ce(z, codewords, target):
        cos = [np.dot(z, c) / np.linalg.norm(z) / np.linalg.norm(c) / 0.1 for c in codewords]
        return math.log(sum(math.exp(c) for c in cos)) - cos[target], int(np.argmax(cos)) == target

    cw = heads.codewords.detach().numpy()
    # codebook 0 sees h itself, codebook 1 sees h with its two coordinates swapped
    frames = [(np.array([3.0, 4.0]), np.array([4.0, 3.0]), 2, 0), (np.array([0.0, 2.0]), np.array([2.0, 0.0]), 1, 2)]
    per_book = [[ce(z0, cw[0], t0) for z0, _, t0, _ in frames], [ce(z1, cw[1], t1) for _, z1, _, t1 in frames]]
    expected = sum(np.mean([v for v, _ in book]) for book in per_book)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert accuracy.tolist() == pytest.approx([np.mean([a for _, a in book]) for book in per_book])
    only_second, _ = acoustic_loss(heads, hidden, tokens, mask, codebooks=torch.tensor([1]), temperature=0.1)
    assert only_second.item() == pytest.approx(np.mean([v for v, _ in per_book[1]]), rel=1e-5)


def test_cqt_loss_and_feature_penalty():
    heads = small_heads()
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    cqt = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, False]])
    assert cqt_loss(heads, hidden, cqt, mask).item() == pytest.approx(((1 - 1) ** 2 + (2 - 0) ** 2) / 2)
    assert feature_penalty(torch.tensor([[1.0, -3.0]])).item() == pytest.approx(5.0)


def test_mixture_leaves_clean_audio_and_pastes_other_clips():
    clean = torch.stack([torch.zeros(48_000), torch.arange(48_000, dtype=torch.float32)])
    before = clean.clone()
    g = torch.Generator().manual_seed(0)
    mixed = in_batch_mixture(clean, prob=1.0, n_segments=(1, 1), generator=g)
    assert torch.equal(clean, before)  # the teachers' input is untouched
    diff = mixed[0] - clean[0]
    run = torch.nonzero(diff).flatten()
    assert 12_000 <= len(run) + 1 <= 24_000 + 1 and (run[1:] - run[:-1] == 1).all()
    pasted = diff[run[0]: run[-1] + 1]
    assert (pasted[1:] - pasted[:-1] == 1).all()  # a contiguous slice of clip 1's ramp
    assert torch.equal(in_batch_mixture(clean, prob=0.0), clean)
    assert torch.equal(in_batch_mixture(clean[:1], prob=1.0), clean[:1])
