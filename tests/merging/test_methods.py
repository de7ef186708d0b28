"""Merge methods on single tensors: task vectors, task arithmetic, trim thresholds, TIES, DARE,
seeds and cosine similarity, checked against hand-written results and direct computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from melos.merging import methods
from melos.merging.methods import (
    CosineAccumulator,
    MagnitudeHistogram,
    cosine,
    dare,
    magnitude_threshold,
    task_arithmetic,
    task_vector,
    tensor_seed,
    ties,
)


def models(n: int, shape=(4, 5), seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A base tensor and n fine-tuned versions of it."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=g)
    return base, [base + 0.1 * torch.randn(shape, generator=g) for _ in range(n)]


# task vectors and task arithmetic

def test_task_vector_of_base_is_zero_and_adds_back_to_finetuned():
    base, (ft,) = models(1)
    assert torch.equal(task_vector(base, base), torch.zeros_like(base))
    torch.testing.assert_close(base + task_vector(base, ft), ft)
    assert task_vector(base.bfloat16(), ft.bfloat16()).dtype == torch.float32


def test_averaging_equals_mean_of_finetuned():
    base, fts = models(3)
    taus = [task_vector(base, ft) for ft in fts]
    torch.testing.assert_close(task_arithmetic(base, taus, [1 / 3] * 3), torch.stack(fts).mean(0))


def test_unit_weight_gives_finetuned_and_negation_subtracts():
    base, (ft,) = models(1)
    kept = base.clone()
    tau = task_vector(base, ft)
    torch.testing.assert_close(task_arithmetic(base, [tau], [1.0]), ft)
    torch.testing.assert_close(task_arithmetic(base, [tau], [-1.0]), base - tau)
    assert torch.equal(base, kept)
    with pytest.raises(ValueError):
        task_arithmetic(base, [tau, tau], [1.0])


# trim thresholds

def test_magnitude_threshold_by_hand():
    v = torch.tensor([-3.0, 1.0, 2.0, -2.0, 0.5])
    assert magnitude_threshold(v, 0.2) == 3.0
    assert magnitude_threshold(v, 0.4) == 2.0
    assert int((v.abs() >= 2.0).sum()) == 3  # the tie with the 2nd largest is kept
    assert magnitude_threshold(v, 0.5) == 2.0  # ceil(2.5) = 3
    assert magnitude_threshold(v, 0.01) == 3.0  # at least one entry
    assert magnitude_threshold(v, 1.0) == 0.0
    assert magnitude_threshold(v, 0.0) == math.inf
    assert magnitude_threshold(torch.arange(1.0, 101.0), 0.07) == 94.0  # 7 of 100 kept, not 8
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            magnitude_threshold(v, bad)


def test_magnitude_threshold_matches_sort():
    g = torch.Generator().manual_seed(1)
    v = (torch.randn(997, generator=g) * 4).round() / 4  # many exact ties
    descending = v.abs().sort(descending=True).values
    for density in (0.001, 0.01, 0.1, 0.25, 0.5, 0.9, 0.999):
        k = math.ceil(density * v.numel())
        t = magnitude_threshold(v, density)
        assert t == descending[k - 1].item()
        assert int((v.abs() >= t).sum()) >= k > int((v.abs() > t).sum())
    assert int((v.abs() >= magnitude_threshold(v, 1.0)).sum()) == v.numel()


def hard_tensors() -> list[torch.Tensor]:
    """Several shapes and scales, with exact ties, zeros, subnormals and entries sharing a bin."""
    g = torch.Generator().manual_seed(2)
    one_bin = 1.0 + torch.arange(200) * 2.0**-23  # consecutive floats: same top 16 bits
    return [
        torch.randn(37, 5, generator=g) * 1e-3,
        torch.randn(300, generator=g) * 10,
        torch.zeros(50),
        torch.full((3, 7), -0.5),
        torch.tensor([1e-45, -1e-45, 3e-40, 1e-38, -2e-39, 0.0, -0.0]),
        one_bin * torch.where(torch.rand(200, generator=g) < 0.5, -1.0, 1.0),
        (torch.randn(4, 4, 4, generator=g) * 8).round() / 8,
    ]


def test_histogram_is_exact():
    tensors = hard_tensors()
    everything = torch.cat([t.flatten() for t in tensors])
    n = everything.numel()
    hist = MagnitudeHistogram()
    for t in tensors:
        hist.add(t)
    densities = [0.0, 1 / n, 0.001, 0.01, 0.1, 0.2, 0.3, 0.5, 0.75, 0.8, 0.9, 0.95, 0.99, 1 - 1 / n, 1.0]
    densities += [k / n for k in range(1, n, 7)]
    for density in densities:
        low, high = hist.bin_bounds(density)
        for t in tensors:
            hist.refine(t)
        expected = magnitude_threshold(everything, density)
        assert hist.threshold() == expected, density
        assert low <= expected <= high


def test_histogram_checks_the_second_pass():
    a = torch.tensor([1.0, -2.0, 3.0])
    b = a.clone()
    hist = MagnitudeHistogram()
    hist.add(a)
    hist.add(b)
    with pytest.raises(RuntimeError):
        hist.threshold()
    hist.bin_bounds(0.5)  # the 3rd largest, 2.0, is in a and in b
    hist.refine(a)
    with pytest.raises(RuntimeError):
        hist.threshold()


# TIES

def test_ties_by_hand():
    base = torch.ones(2, 3)
    taus = [torch.tensor(t).reshape(2, 3) for t in (
        [2.0, 0.1, 0.2, 1.0, 3.0, -5.0],
        [-1.0, 2.0, 0.3, -1.0, 1.0, 1.0],
        [4.0, 1.0, -0.1, 0.0, -2.0, 1.0],
    )]
    # trimmed (|v| >= [0.5, 1.0, 0.5], ties kept):
    #   [2, 0, 0, 1, 3, -5]   [-1, 2, 0, -1, 1, 1]   [4, 1, 0, 0, -2, 1]
    # sum [5, 3, 0, 0, 2, -3]: signs + + 0 0 + -   (entry 5: mass beats a 2-to-1 count)
    # disjoint mean [(2+4)/2, (2+1)/2, 0 (all trimmed), 0 (zero sum), (3+1)/2, -5]
    merged = ties(base, taus, [0.5, 1.0, 0.5], scale=0.5)
    expected = 1 + 0.5 * torch.tensor([3.0, 1.5, 0.0, 0.0, 2.0, -5.0]).reshape(2, 3)
    torch.testing.assert_close(merged, expected)


def test_ties_without_trimming_one_model_is_scaled_task_vector():
    base, (ft,) = models(1)
    tau = task_vector(base, ft)
    torch.testing.assert_close(ties(base, [tau], [0.0], scale=0.3), base + 0.3 * tau)
    torch.testing.assert_close(ties(base, [tau], [math.inf]), base)


# DARE and seeds

def test_dare_is_unbiased_and_drops_p():
    p, draws = 0.7, 2000
    tau = torch.randn(50, generator=torch.Generator().manual_seed(3)) + 0.01
    out = torch.stack([dare(tau, p, torch.Generator().manual_seed(i)) for i in range(draws)])
    standard_error = tau.abs() * math.sqrt(p / (1 - p) / draws)
    assert bool(((out.mean(0) - tau).abs() <= 5 * standard_error).all())
    assert abs((out == 0).double().mean().item() - p) < 0.01
    kept = out != 0
    torch.testing.assert_close(out[kept], (tau / (1 - p)).expand_as(out)[kept])


def test_dare_is_deterministic_per_seed():
    tau = torch.randn(100, generator=torch.Generator().manual_seed(5))
    first = dare(tau, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(first, dare(tau, 0.5, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, dare(tau, 0.5, torch.Generator().manual_seed(8)))
    assert torch.equal(dare(tau, 0.0, torch.Generator()), tau)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError):
            dare(tau, bad, torch.Generator())


def test_tensor_seed_is_stable_and_distinct(monkeypatch):
    def salted(_):
        raise AssertionError("hash() differs between processes")

    monkeypatch.setattr(methods, "hash", salted, raising=False)  # shadows the builtin there
    seed = tensor_seed(0, "encoder.layers.0.attention.q_proj.weight", 1)
    assert seed == tensor_seed(0, "encoder.layers.0.attention.q_proj.weight", 1)
    others = {tensor_seed(s, name, i) for s in (0, 1) for name in ("a", "b", "a\0") for i in (0, 1)}
    assert len(others) == 12
    assert tensor_seed(1, "2.weight", 0) != tensor_seed(12, ".weight", 0)
    assert tensor_seed(0, "bias1", 0) != tensor_seed(0, "bias", 10)
    assert all(0 <= s < 2**63 for s in others | {seed})
    torch.Generator().manual_seed(seed)


# similarity

def test_cosine():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(3, 4, generator=g), torch.randn(12, generator=g)
    assert cosine(a, b) == pytest.approx(F.cosine_similarity(a.flatten(), b, dim=0).item(), abs=1e-6)
    assert cosine(a, -2 * a) == pytest.approx(-1.0)
    assert cosine(a, torch.zeros(3, 4)) == 0.0


def test_cosine_accumulator_matches_concatenated_vectors():
    g = torch.Generator().manual_seed(4)
    shapes = [(4, 5), (7,), (2, 3, 2)]
    first = [torch.randn(s, generator=g) for s in shapes]
    vectors = [first, [torch.randn(s, generator=g) for s in shapes], [-2 * t for t in first],
               [torch.zeros(s) for s in shapes]]
    acc = CosineAccumulator(len(vectors))
    for chunk in zip(*vectors):
        acc.add(list(chunk))
    whole = [torch.cat([t.flatten() for t in v]).double() for v in vectors]
    expected = torch.tensor([[F.cosine_similarity(a, b, dim=0).item() for b in whole] for a in whole],
                            dtype=torch.float64)
    expected[3, 3] = 0.0
    matrix = acc.matrix()
    assert matrix.dtype == torch.float64 and matrix.shape == (4, 4)
    torch.testing.assert_close(matrix, expected)
    assert matrix[0, 2] == pytest.approx(-1.0) and matrix[1, 1] == 1.0
    with pytest.raises(ValueError):
        acc.add(first)
