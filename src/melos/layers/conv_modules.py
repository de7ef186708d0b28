"""The convolutional halves of Branchformer and Conformer blocks: local context per frame.

Both zero padded frames before their depthwise convolution, so a padded clip gives, on its real
frames, what the unpadded clip gives (the convolution's own zero padding at the edges is the same).
"""

from __future__ import annotations

import torch
from torch import nn


def zero_padding(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded frames of [B, T, C] ([B, T] bool valid; None: nothing is padded)."""
    return x if valid is None else x.masked_fill(~valid[..., None], 0.0)


class DepthwiseConv(nn.Module):
    """Depthwise 1-D convolution over time of [B, T, C], 'same' length (odd kernel)."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(zero_padding(x, valid).transpose(1, 2)).transpose(1, 2)


class ConvolutionalGatingMLP(nn.Module):
    """cgMLP (Sakuma et al.), the Branchformer's local branch:

        Linear(D -> U) + GELU ; split into halves (a, g) ; g -> LayerNorm -> depthwise conv ;
        a * g ; Linear(U/2 -> D)
    """

    def __init__(self, dim: int, units: int, kernel_size: int = 31, dropout: float = 0.0):
        super().__init__()
        if units % 2:
            raise ValueError(f"units must be even (split in halves), got {units}")
        self.up = nn.Sequential(nn.Linear(dim, units), nn.GELU())
        self.norm = nn.LayerNorm(units // 2)
        self.conv = DepthwiseConv(units // 2, kernel_size)
        self.down = nn.Linear(units // 2, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        a, g = self.up(x).chunk(2, dim=-1)
        g = self.conv(self.norm(g), valid)
        return self.down(self.dropout(a * g))


class ConformerConvModule(nn.Module):
    """Conformer convolution module: pointwise (D -> 2D) -> GLU -> depthwise conv -> LayerNorm ->
    Swish -> pointwise (D -> D). LayerNorm rather than the original BatchNorm: per-frame, so
    padding and batch composition never change a clip's output."""

    def __init__(self, dim: int, kernel_size: int = 31, dropout: float = 0.0):
        super().__init__()
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.glu = nn.GLU(dim=-1)
        self.conv = DepthwiseConv(dim, kernel_size)
        self.norm = nn.LayerNorm(dim)
        self.activation = nn.SiLU()
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conv(self.glu(self.pointwise_in(x)), valid)
        return self.dropout(self.pointwise_out(self.activation(self.norm(x))))
