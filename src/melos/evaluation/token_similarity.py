"""Token-level similarity of corpora (spec section 6): how differently does a frozen teacher
tokenise two musical traditions?

For each corpus, count the teacher's tokens per codebook (K x C), normalise each codebook's
counts to a distribution, and compare corpora pairwise with the Jensen-Shannon divergence
(base 2, in [0, 1]) and the cosine distance, each averaged over codebooks.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch


def token_histogram(tokenize: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[torch.Tensor],
                    codebook_size: int) -> torch.Tensor:
    """Counts [K, C] of the tokens `tokenize` gives ([B, K, T] ints) over audio batches [B, N]."""
    counts = None
    for audio in batches:
        tokens = tokenize(audio)
        K = tokens.shape[1]
        flat = tokens.transpose(0, 1).reshape(K, -1)
        batch = torch.stack([torch.bincount(flat[k], minlength=codebook_size) for k in range(K)]).double()
        counts = batch if counts is None else counts + batch
    if counts is None:
        raise ValueError("no audio to count tokens on")
    return counts


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in bits between distributions along the last dim (0 log 0 = 0)."""
    p, q = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        return torch.where(a > 0, a * torch.log2(a / m), 0.0).sum(-1)

    return (kl(p) + kl(q)) / 2


def cosine_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity along the last dim."""
    return 1 - torch.nn.functional.cosine_similarity(p, q, dim=-1)


def corpus_similarity(histograms: dict[str, torch.Tensor]) -> dict:
    """{"corpora": names, "jsd": [n][n], "cosine_distance": [n][n]}, each averaged over codebooks."""
    names = list(histograms)
    jsd = [[float(js_divergence(histograms[a], histograms[b]).mean()) for b in names] for a in names]
    cos = [[float(cosine_distance(histograms[a], histograms[b]).mean()) for b in names] for a in names]
    return {"corpora": names, "jsd": jsd, "cosine_distance": cos}
