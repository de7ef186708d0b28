"""Multi-head self-attention with rotary position encoding (RoFormer), SDPA underneath.

Rotary encoding turns each (query, key) pair of dimensions (i, i + d/2) by the angle
``position * base ** (-2i / d)``, so the score between frames s and t depends on ``t - s`` only:
attention is equivariant to a shift of all positions, and no position table caps the length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotate(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Apply rotary encoding (rotate-half convention of GPT-NeoX / LLaMA).

    Args:
        x: [..., T, d] with d even.
        positions: [T] (float or int) positions of the T frames.
    """
    d = x.shape[-1]
    inv_freq = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    angles = positions.to(torch.float32)[:, None] * inv_freq  # [T, d/2]
    cos, sin = angles.cos().repeat(1, 2).to(x.dtype), angles.sin().repeat(1, 2).to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def key_padding_mask(valid: torch.Tensor | None) -> torch.Tensor | None:
    """[B, T] True-for-real-frames -> SDPA boolean mask [B, 1, 1, T] (True = may attend)."""
    return None if valid is None else valid[:, None, None, :]


class RotaryAttention(nn.Module):
    """Self-attention over [B, T, D] with rotary q/k; padded keys never receive attention."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads or (dim // n_heads) % 2:
            raise ValueError(f"dim {dim} must split into {n_heads} heads of even size")
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        """Args:
            x: frames [B, T, D].
            valid: [B, T] bool, True for real (unpadded) frames; None means all are real.
            start: position of frame 0 (chunked inference of long audio keeps absolute positions).
        """
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        positions = torch.arange(start, start + T, device=x.device)
        q, k = rotate(q, positions), rotate(k, positions)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_padding_mask(valid),
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, D))
