"""Branchformer and Conformer blocks over [B, T, D] frames with an optional [B, T] validity mask.

    Branchformer (Peng et al., 2022): global and local branches side by side, merged.
        x + Linear_2D->D([mixer(LN x), cgMLP(LN x)])
    Conformer (Gulati et al., 2020): macaron half-FFNs around mixer and convolution, in series.
        x + FFN/2 -> x + mixer -> x + conv -> x + FFN/2 -> LN
The mixer is rotary self-attention or SummaryMixing (`token_mixers`).
"""

from __future__ import annotations

import torch
from torch import nn

from .conv_modules import ConformerConvModule, ConvolutionalGatingMLP
from .token_mixers import token_mixer


class BranchformerBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, mixer: str, summary_hidden: int, cgmlp_units: int,
                 kernel_size: int = 31, dropout: float = 0.0):
        super().__init__()
        self.norm_global = nn.LayerNorm(dim)
        self.mixer = token_mixer(mixer, dim, n_heads, summary_hidden, dropout)
        self.norm_local = nn.LayerNorm(dim)
        self.cgmlp = ConvolutionalGatingMLP(dim, cgmlp_units, kernel_size, dropout)
        self.merge = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        g = self.dropout(self.mixer(self.norm_global(x), valid))
        local = self.dropout(self.cgmlp(self.norm_local(x), valid))
        return x + self.dropout(self.merge(torch.cat([g, local], dim=-1)))


class MacaronFeedForward(nn.Module):
    """One of the Conformer's macaron pair of FFNs: LayerNorm -> Linear(D -> F) -> Swish -> Linear(F -> D)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConformerBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, mixer: str, summary_hidden: int, ffn_hidden: int,
                 kernel_size: int = 31, dropout: float = 0.0):
        super().__init__()
        self.ffn_in = MacaronFeedForward(dim, ffn_hidden, dropout)
        self.norm_mixer = nn.LayerNorm(dim)
        self.mixer = token_mixer(mixer, dim, n_heads, summary_hidden, dropout)
        self.norm_conv = nn.LayerNorm(dim)
        self.conv = ConformerConvModule(dim, kernel_size, dropout)
        self.ffn_out = MacaronFeedForward(dim, ffn_hidden, dropout)
        self.norm_out = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        x = x + 0.5 * self.ffn_in(x)
        x = x + self.dropout(self.mixer(self.norm_mixer(x), valid))
        x = x + self.conv(self.norm_conv(x), valid)
        x = x + 0.5 * self.ffn_out(x)
        return self.norm_out(x)
