"""The global branch of an efficient block: rotary self-attention (quadratic in T) or
SummaryMixing (linear in T), behind one constructor and one call signature."""

from __future__ import annotations

from torch import nn

from .rotary_attention import RotaryAttention
from .summary_mixing import SummaryMixing

MIXERS = ("attention", "summary-mixing", "summary-mixing-lite")


def token_mixer(kind: str, dim: int, n_heads: int, summary_hidden: int, dropout: float = 0.0) -> nn.Module:
    """A module called as ``mixer(x [B, T, D], valid [B, T] | None) -> [B, T, D]``."""
    if kind == "attention":
        return RotaryAttention(dim, n_heads, dropout)
    if kind == "summary-mixing":
        return SummaryMixing(dim, summary_hidden, dropout=dropout)
    if kind == "summary-mixing-lite":
        return SummaryMixing(dim, dim, lite=True, dropout=dropout)
    raise ValueError(f"unknown token mixer {kind!r}; expected one of {MIXERS}")
