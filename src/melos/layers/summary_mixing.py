"""SummaryMixing (Parcollet et al., 2023): a linear-time replacement for self-attention.

Each frame is mixed with one summary of the whole clip, the mean of a per-frame transform:

    h_t = c([f(x_t), mean_{s valid} s(x_s)])        (full)
    h_t = mean_{s valid} s(x_s)                     (lite: no f and c; the summary is broadcast)

f, s and c are Linear + GELU. There is no T x T term, so time and memory grow linearly with the
number of frames T. The mean runs over valid (unpadded) frames only, so padding a clip changes
nothing, and the output at frame t does not depend on the order of the other frames.
"""

from __future__ import annotations

import torch
from torch import nn


def masked_mean(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of [B, T, C] counting only valid frames ([B, T] bool): [B, 1, C]."""
    if valid is None:
        return x.mean(dim=1, keepdim=True)
    weights = valid.to(x.dtype)[..., None]
    return (x * weights).sum(dim=1, keepdim=True) / weights.sum(dim=1, keepdim=True).clamp(min=1)


class SummaryMixing(nn.Module):
    """[B, T, D] -> [B, T, D].

    Args:
        dim: model width D.
        hidden: width of f and s (the full variant concatenates them, so c maps 2*hidden -> D);
            the lite variant needs hidden == D, since it has no c to project back.
        lite: the "lite" variant (summary only), suited to the Branchformer whose conv branch
            already models each frame locally.
    """

    def __init__(self, dim: int, hidden: int, lite: bool = False, dropout: float = 0.0):
        super().__init__()
        if lite and hidden != dim:
            raise ValueError(f"lite SummaryMixing has no output projection: hidden ({hidden}) must equal dim ({dim})")
        self.lite = lite
        self.summary = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
        if not lite:
            self.local = nn.Sequential(nn.Linear(dim, hidden), nn.GELU())
            self.combine = nn.Sequential(nn.Linear(2 * hidden, dim), nn.GELU())
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x [B, T, D]; valid [B, T] bool, True for real frames (None: all real)."""
        summary = masked_mean(self.summary(x), valid)  # [B, 1, hidden]
        if self.lite:
            return self.dropout(summary.expand_as(x))
        local = self.local(x)
        return self.dropout(self.combine(torch.cat([local, summary.expand_as(local)], dim=-1)))
