"""Merge methods as pure functions over one tensor name at a time.

The streaming executor calls these once per tensor name with the base tensor and the fine-tuned
tensors (or their task vectors) of every model, all of one shape and in float32. What needs the
whole model at once (TIES' whole-model trim threshold, similarity of whole task vectors) is
accumulated tensor by tensor by `MagnitudeHistogram` and `CosineAccumulator`.

    task vector      tau = finetuned - base                           (Ilharco et al. 2023)
    task arithmetic  base + sum_i w_i tau_i
    TIES             trim, elect sign, disjoint mean                  (Yadav et al. 2023)
    DARE             drop with probability p, rescale by 1 / (1 - p)  (Yu et al. 2024)
"""

from __future__ import annotations

import hashlib
import math
import struct
from fractions import Fraction

import torch
from torch import Tensor

_BINS = 1 << 16  # the top 16 bits of a float32: sign, exponent and 7 mantissa bits


def task_vector(base: Tensor, finetuned: Tensor) -> Tensor:
    """tau = finetuned - base, in float32: what fine-tuning added to the base weights."""
    return finetuned.float() - base.float()


def task_arithmetic(base: Tensor, taus: list[Tensor], weights: list[float]) -> Tensor:
    """base + sum_i weights[i] * taus[i]. Averaging the fine-tuned models is weights = [1/N] * N;
    negating (forgetting) a task is a negative weight."""
    merged = base.to(torch.float32, copy=True)
    for tau, weight in zip(taus, weights, strict=True):
        merged.add_(tau.float(), alpha=weight)
    return merged


def _keep_count(density: float, n: int) -> int:
    """k = ceil(density * n), at least 1 unless density is 0. The density is read as the decimal it
    prints as, so 0.07 of 100 entries keeps 7, not ceil(0.07 * 100) = ceil(7.000000000000001) = 8."""
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    if density == 0 or n == 0:
        return 0
    return max(1, math.ceil(Fraction(str(density)) * n))


def magnitude_threshold(values: Tensor, density: float) -> float:
    """The magnitude t such that keeping |v| >= t keeps the top `density` fraction of the entries:
    the k-th largest |v|, k = ceil(density * numel). Entries tied with the k-th are kept too, so a
    few more than k may survive. Density 1 gives 0.0 (keep everything), density 0 gives inf."""
    n = values.numel()
    k = _keep_count(density, n)
    if density == 1 or n == 0:
        return 0.0
    if k == 0:
        return math.inf
    magnitudes = values.detach().float().abs().flatten()
    return magnitudes.kthvalue(n - k + 1).values.item()


def _magnitude_bits(values: Tensor) -> Tensor:
    """The float32 bit patterns of |v| as int32: for non-negative floats, ordering the bit patterns
    as integers orders the magnitudes."""
    return values.detach().float().abs().reshape(-1).view(torch.int32)


def _float_of_bits(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _bin_of_rank(counts: Tensor, k: int) -> tuple[int, int]:
    """The bin holding the k-th largest entry of a histogram, and that entry's rank within the bin."""
    from_top = counts.flip(0).cumsum(0)
    j = int(torch.searchsorted(from_top, torch.tensor(k)))
    above = int(from_top[j] - counts[len(counts) - 1 - j])
    return len(counts) - 1 - j, k - above


class MagnitudeHistogram:
    """Exact k-th largest magnitude over many tensors, streamed, in bounded memory.

    TIES trims the whole task vector of a model, not each tensor on its own, so the threshold is a
    rank over every entry of the model. Two passes over the tensors, 2 x 65536 counts in memory:

        hist = MagnitudeHistogram()
        for tau in tensors: hist.add(tau)        # pass 1: count |v| by the top 16 bits of float32
        hist.bin_bounds(density)                 # which bin holds the k-th largest
        for tau in tensors: hist.refine(tau)     # pass 2: count that bin's entries by the low 16 bits
        t = hist.threshold()                     # == magnitude_threshold(all entries, density)

    A bin and a low 16-bit pattern together spell one float32, so pass 2 is exact. Inputs are
    assumed finite.
    """

    def __init__(self) -> None:
        self.counts = torch.zeros(_BINS, dtype=torch.int64)
        self._bin: int | None = None
        self._rank = 0
        self._sub = torch.zeros(_BINS, dtype=torch.int64)
        self._known: float | None = None

    def add(self, values: Tensor) -> None:
        """Pass 1: count the magnitudes of `values` by bin."""
        bins = (_magnitude_bits(values) >> 16).long()
        self.counts += torch.bincount(bins, minlength=_BINS).cpu()

    def bin_bounds(self, density: float) -> tuple[float, float]:
        """Choose the bin holding the k-th largest magnitude, k = ceil(density * total), and start
        pass 2 afresh. Returns the bin's magnitude range [low, high): only entries in it matter to
        `refine`. The range is empty (low == high) when no second pass is needed (density 0 or 1)."""
        n = int(self.counts.sum())
        k = _keep_count(density, n)
        self._sub.zero_()
        self._bin = None
        if density == 1 or n == 0:
            self._known = 0.0
        elif k == 0:
            self._known = math.inf
        else:
            self._known = None
            self._bin, self._rank = _bin_of_rank(self.counts, k)
            return _float_of_bits(self._bin << 16), _float_of_bits((self._bin + 1) << 16)
        return self._known, self._known

    def refine(self, values: Tensor) -> None:
        """Pass 2: count the entries of `values` that fall in the chosen bin by their low 16 bits."""
        if self._bin is None:
            return
        bits = _magnitude_bits(values)
        inside = bits[(bits >> 16) == self._bin] & 0xFFFF
        self._sub += torch.bincount(inside.long(), minlength=_BINS).cpu()

    def threshold(self) -> float:
        """The exact k-th largest magnitude over every tensor added (see `magnitude_threshold`)."""
        if self._known is not None:
            return self._known
        if self._bin is None:
            raise RuntimeError("call bin_bounds(density) and refine() every tensor first")
        if int(self._sub.sum()) != int(self.counts[self._bin]):
            raise RuntimeError("refine() must see every tensor that add() saw")
        low_bits, _ = _bin_of_rank(self._sub, self._rank)
        return _float_of_bits(self._bin << 16 | low_bits)


def ties(base: Tensor, taus: list[Tensor], thresholds: list[float], scale: float = 1.0) -> Tensor:
    """TIES-Merging (Yadav et al. 2023).

    (1) Trim: zero the entries of tau_i with |tau_i| < thresholds[i] (ties kept); the caller gets
        thresholds per tensor from `magnitude_threshold` or per model from `MagnitudeHistogram`.
    (2) Elect sign: the sign of the sum of the trimmed taus, so the side with more total mass wins;
        where the sum is exactly 0 there is no update.
    (3) Disjoint mean: per entry, the mean over the models whose trimmed value is nonzero and agrees
        with the elected sign, so disagreeing and trimmed models do not dilute it.
    (4) base + scale * merged.
    """
    trimmed = torch.stack([torch.where(tau.float().abs() >= threshold, tau.float(), 0.0)
                           for tau, threshold in zip(taus, thresholds, strict=True)])
    elected = torch.sign(trimmed.sum(0))
    agrees = (torch.sign(trimmed) == elected) & (trimmed != 0)
    merged = (trimmed * agrees).sum(0) / agrees.sum(0).clamp(min=1)
    return base.float() + scale * merged


def dare(tau: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """DARE (Yu et al. 2024): drop each entry of tau with probability p and rescale the survivors by
    1 / (1 - p), which keeps the expected task vector equal to tau. `generator` must live on tau's
    device; seed it with `tensor_seed` for a reproducible streamed merge."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop probability must be in [0, 1), got {p}")
    if p == 0:
        return tau
    keep = torch.rand(tau.shape, generator=generator, device=tau.device) >= p
    return torch.where(keep, tau.float() / (1 - p), 0.0)


def tensor_seed(seed: int, name: str, model_index: int) -> int:
    """A 63-bit seed for DARE's generator on one (tensor name, model), derived from the merge seed
    with hashlib: independent of the order tensors are streamed in and stable across processes
    (unlike hash(), which is salted per process)."""
    digest = hashlib.blake2b(f"{seed}\0{name}\0{model_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine similarity of two flattened tensors, in float64; 0.0 when either is all zero."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    norms = float(a.norm() * b.norm())
    if norms == 0:
        return 0.0
    return max(-1.0, min(1.0, float(a @ b) / norms))


class CosineAccumulator:
    """Pairwise cosine similarity of N task vectors accumulated tensor by tensor (dot products and
    squared norms in float64), for a merge report that sees one tensor name at a time."""

    def __init__(self, n: int) -> None:
        self.gram = torch.zeros(n, n, dtype=torch.float64)

    def add(self, taus: list[Tensor]) -> None:
        """Add one tensor name's slice of each of the N task vectors."""
        if len(taus) != len(self.gram):
            raise ValueError(f"expected {len(self.gram)} tensors, got {len(taus)}")
        flat = torch.stack([tau.detach().double().flatten() for tau in taus])
        self.gram += (flat @ flat.T).cpu()

    def matrix(self) -> Tensor:
        """[n, n] float64 cosine similarities; the diagonal is 1, or 0 for an all-zero vector."""
        norms = self.gram.diagonal().sqrt()
        outer = torch.outer(norms, norms)
        cos = torch.where(outer > 0, self.gram / outer, 0.0).clamp(-1.0, 1.0)
        cos.diagonal().copy_((norms > 0).double())
        return cos
