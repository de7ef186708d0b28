"""Convolutional relative position embedding of wav2vec 2.0 / HuBERT / MERT."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d with weight normalisation over dim 2, stored as `weight_g` and `weight_v`.

    weight = g * v / ||v||, the norm taken over dims 0 and 1 (one norm per kernel tap), exactly
    as `torch.nn.utils.weight_norm(conv, dim=2)`. Keeping g and v as plain parameters gives the
    official checkpoint key names without parametrisation hooks.
    """

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        if dim % groups:
            raise ValueError(f"hidden size {dim} is not divisible by {groups} positional conv groups")
        self.groups, self.padding = groups, kernel // 2
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel))
        self.bias = nn.Parameter(torch.empty(dim))

    def reset_parameters(self) -> None:
        """fairseq's init: v ~ N(0, 4 / (kernel * dim)), g = ||v|| so that weight == v."""
        kernel, dim = self.weight_v.shape[2], self.weight_v.shape[0]
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel * dim)))
        with torch.no_grad():
            self.weight_g.copy_(self.weight_v.norm(dim=(0, 1), keepdim=True))
        nn.init.zeros_(self.bias)

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight, self.bias, padding=self.padding, groups=self.groups)


class PositionalConvEmbedding(nn.Module):
    """x [B, T, H] -> GELU(conv(x)) [B, T, H]; the caller adds it to x."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.conv = WeightNormConv1d(dim, kernel, groups)
        # An even kernel with padding kernel // 2 yields T + 1 outputs: drop the last one.
        self.n_drop = 1 if kernel % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))  # (B, H, T + n_drop)
        if self.n_drop:
            y = y[:, :, : -self.n_drop]
        return F.gelu(y).transpose(1, 2)
