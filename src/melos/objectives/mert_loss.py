"""MERT's pre-training losses: masked multi-codebook token prediction, CQT reconstruction,
and the CNN-feature penalty (spec section 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LossWeights:
    """Weights of the loss terms. Defaults: the public MERT training config (acoustic CE sum x1,
    CNN-feature penalty x10, CQT MSE x1). The thesis writes L = 10 * L_acoustic + L_cqt instead:
    `LossWeights(acoustic=10.0, cqt=1.0, features=0.0)`."""

    acoustic: float = 1.0
    cqt: float = 1.0
    features: float = 10.0


class MERTHeads(nn.Module):
    """The pre-training heads that official checkpoints do not ship.

    - `final_proj`: Linear(H -> K * D), one D-dim vector per codebook and frame;
    - `codewords`: learned embeddings [K, C, D] of every teacher codeword;
    - `cqt_proj`: Linear(H -> n_cqt_bins).
    """

    def __init__(self, hidden_size: int, n_codebooks: int = 8, codebook_size: int = 1024, final_dim: int = 64,
                 n_cqt_bins: int = 336):
        super().__init__()
        self.n_codebooks, self.final_dim = n_codebooks, final_dim
        self.final_proj = nn.Linear(hidden_size, n_codebooks * final_dim)
        self.codewords = nn.Parameter(torch.empty(n_codebooks, codebook_size, final_dim))
        self.cqt_proj = nn.Linear(hidden_size, n_cqt_bins)
        nn.init.uniform_(self.codewords)  # fairseq HuBERT's label embeddings init

    def token_logits(self, hidden: torch.Tensor, codebooks: torch.Tensor | None = None,
                     temperature: float = 0.1) -> torch.Tensor:
        """Cosine-similarity logits.

        Args:
            hidden: [N, H] encoder outputs at the masked frames.
            codebooks: indices of the codebooks to predict (all when None), [K'].

        Returns [N, K', C]: cos(proj_k(h), e_{k,c}) / temperature.
        """
        z = self.final_proj(hidden).view(hidden.shape[0], self.n_codebooks, self.final_dim)  # (N, K, D)
        e = self.codewords
        if codebooks is not None:
            z, e = z[:, codebooks], e[codebooks]
        z, e = F.normalize(z.float(), dim=-1), F.normalize(e.float(), dim=-1)
        return torch.einsum("nkd,kcd->nkc", z, e) / temperature


def acoustic_loss(heads: MERTHeads, hidden: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                  codebooks: torch.Tensor | None = None, temperature: float = 0.1
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked-prediction cross-entropy, mean over masked frames, summed over codebooks.

    Args:
        hidden: [B, T, H] last hidden state; tokens: [B, K, T] teacher tokens; mask: [B, T] bool.
        codebooks: [K'] indices of the codebooks to predict this batch (all when None).

    Returns the loss (scalar) and per-codebook accuracy on masked frames [K'].
    """
    logits = heads.token_logits(hidden[mask], codebooks, temperature)  # (N, K', C)
    targets = tokens.transpose(1, 2)[mask]  # (N, K)
    if codebooks is not None:
        targets = targets[:, codebooks]
    n, k, c = logits.shape  # flat rows: a contiguous class axis is ~1.5x faster than [N, C, K']
    ce = F.cross_entropy(logits.reshape(n * k, c), targets.reshape(n * k), reduction="none").view(n, k)
    accuracy = (logits.argmax(-1) == targets).float().mean(0)
    return ce.mean(0).sum(), accuracy


def cqt_loss(heads: MERTHeads, hidden: torch.Tensor, cqt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between the CQT head's prediction and the teacher CQT [B, T, bins], masked frames only."""
    return F.mse_loss(heads.cqt_proj(hidden[mask]).float(), cqt[mask].float())


def feature_penalty(features: torch.Tensor) -> torch.Tensor:
    """Mean of the squared CNN features (keeps the front end's scale in check)."""
    return features.float().pow(2).mean()
