"""Transformer encoder layer of HuBERT/MERT (post-LN or pre-LN), attention through SDPA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections (official key names)."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"hidden size {dim} is not divisible by {n_heads} heads")
        self.n_heads, self.dropout = n_heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        q, k, v = (p(x).view(B, T, self.n_heads, H // self.n_heads).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))  # (B, nh, T, hs)
        dtype = q.dtype
        if dtype == torch.bfloat16 and q.device.type == "cpu":  # the CPU kernel is faster in fp32 (measured)
            q, k, v = q.float(), k.float(), v.float()
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        y = y.to(dtype).transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        return self.out_proj(y)


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear, with HuBERT's dropout placement."""

    def __init__(self, dim: int, hidden_dim: int, activation_dropout: float = 0.0, dropout: float = 0.0):
        super().__init__()
        self.intermediate_dense = nn.Linear(dim, hidden_dim)
        self.output_dense = nn.Linear(hidden_dim, dim)
        self.activation_dropout = nn.Dropout(activation_dropout)
        self.output_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation_dropout(F.gelu(self.intermediate_dense(x)))
        return self.output_dropout(self.output_dense(x))


class TransformerLayer(nn.Module):
    """One encoder layer.

    post-LN (MERT-95M):  x = LN(x + attn(x));      x = LN'(x + ffn(x))
    pre-LN  (MERT-330M): x = x + attn(LN(x));       x = x + ffn(LN'(x))
    """

    def __init__(self, dim: int, n_heads: int, ffn_dim: int, pre_norm: bool, eps: float = 1e-5,
                 dropout: float = 0.0, attention_dropout: float = 0.0, activation_dropout: float = 0.0):
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = SelfAttention(dim, n_heads, attention_dropout)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(dim, eps=eps)
        self.feed_forward = FeedForward(dim, ffn_dim, activation_dropout, dropout)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.attention(self.layer_norm(x)))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.dropout(self.attention(x)))
        return self.final_layer_norm(x + self.feed_forward(x))
