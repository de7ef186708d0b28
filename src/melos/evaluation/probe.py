"""A whole probe grid trained at once: every (layer choice, learning rate) member of one seed
is a slice of stacked weights, trained with batched matmuls on the cached features.

    features [n_layers, N, H] --(per member: one layer, or softmax-weighted sum)--> [M, N, H]
    MLP per member: Linear(H -> 512) -> ReLU -> dropout -> Linear(512 -> C)   (torch.baddbmm)
    Adam per member (its own lr), ReduceLROnPlateau (patience 3) and early stopping (patience 10)
    on the member's validation metric; test uses the member's best-on-validation weights.

Members share batches (one shuffle per seed), so a member trained inside the grid follows the
same trajectory as the member trained alone (`train_member_alone`, the reference in tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTED = -1  # layer choice: learnable softmax-weighted sum over all layers
LEARNING_RATES = (5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2)


@dataclass
class ProbeConfig:
    task_type: str  # multilabel | multiclass | regression | key
    hidden_dim: int = 512
    dropout: float = 0.2
    batch_size: int = 64
    max_epochs: int = 100
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    early_stop_patience: int = 10
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


@dataclass
class Member:
    layer: int  # hidden-state index, or WEIGHTED
    lr: float


@dataclass
class GridResult:
    members: list[Member]
    best_valid: torch.Tensor  # [M]
    best_epoch: torch.Tensor  # [M]
    n_epochs: torch.Tensor  # [M], epochs trained before early stopping
    valid_curve: list[torch.Tensor] = field(default_factory=list)  # per epoch, [M]
    test_outputs: torch.Tensor | None = None  # [M, N_test, C], from each member's best state


def loss_fn(task_type: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-member training loss. logits [M, B, C]; returns [M] (mean over the batch)."""
    if task_type == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, y.expand_as(logits), reduction="none").mean((1, 2))
    if task_type in ("multiclass", "key"):
        M, B, C = logits.shape
        return F.cross_entropy(logits.reshape(M * B, C), y.repeat(M), reduction="none").view(M, B).mean(1)
    return F.mse_loss(logits, y.expand_as(logits), reduction="none").mean((1, 2))


def outputs(task_type: str, logits: torch.Tensor) -> torch.Tensor:
    """What is averaged over a track's windows: probabilities, or predictions for regression."""
    if task_type == "multilabel":
        return torch.sigmoid(logits)
    if task_type in ("multiclass", "key"):
        return torch.softmax(logits, dim=-1)
    return logits


def member_init(seed: int, member: Member, n_layers: int, in_dim: int, hidden: int, n_out: int) -> dict:
    """Initial weights of one member, from its own generator (as nn.Linear's default init)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + (member.layer + 1) * 1_009 + int(member.lr * 1e9) % 1_000_003)

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        bound = 1 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=g) * 2 - 1) * bound

    return {"mix": torch.zeros(n_layers), "w1": uniform((in_dim, hidden), in_dim), "b1": uniform((hidden,), in_dim),
            "w2": uniform((hidden, n_out), hidden), "b2": uniform((n_out,), hidden)}


class GridTrainer:
    """Trains all `members` at once for one seed.

    Args:
        train, valid, test: (features [n_layers, N, H], targets) at window level.
        valid_groups, test_groups: track index of every window [N] (window -> track averaging).
        metric: (track outputs [M, T, C], track targets) -> [M], higher is better.
    """

    def __init__(self, config: ProbeConfig, members: list[Member], n_out: int, seed: int,
                 metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.config, self.members, self.n_out, self.seed, self.metric = config, members, n_out, seed, metric

    def _forward(self, params: dict, x: torch.Tensor, train: bool, g: torch.Generator | None) -> torch.Tensor:
        """x [n_layers, B, H] -> logits [M, B, C]."""
        mix = torch.where(self.fixed_mask, self.fixed_mix, torch.softmax(params["mix"], dim=-1))  # (M, n_layers)
        h = torch.einsum("ml,lbh->mbh", mix, x)  # (M, B, H)
        h = torch.relu(torch.baddbmm(params["b1"][:, None], h, params["w1"]))  # (M, B, hidden)
        if train and self.config.dropout > 0:
            keep = torch.rand(h.shape, generator=g) >= self.config.dropout
            h = h * keep / (1 - self.config.dropout)
        return torch.baddbmm(params["b2"][:, None], h, params["w2"])  # (M, B, C)

    def fit(self, train: tuple, valid: tuple, test: tuple, valid_groups: torch.Tensor,
            test_groups: torch.Tensor) -> GridResult:
        c, M = self.config, len(self.members)
        x_train, y_train = train
        n_layers, N, H = x_train.shape
        init = [member_init(self.seed, m, n_layers, H, c.hidden_dim, self.n_out) for m in self.members]
        params = {k: torch.stack([i[k] for i in init]).requires_grad_() for k in init[0]}
        self.fixed_mask = torch.tensor([m.layer != WEIGHTED for m in self.members])[:, None]
        self.fixed_mix = F.one_hot(torch.tensor([max(m.layer, 0) for m in self.members]), n_layers).float()
        lr = torch.tensor([m.lr for m in self.members])
        adam = {k: (torch.zeros_like(p), torch.zeros_like(p)) for k, p in params.items()}
        n_updates = 0
        best = torch.full((M,), -math.inf)
        best_epoch = torch.full((M,), -1)
        plateau_best = torch.full((M,), -math.inf)
        plateau_bad = torch.zeros(M, dtype=torch.long)
        active = torch.ones(M, dtype=torch.bool)
        best_params = {k: p.detach().clone() for k, p in params.items()}
        n_epochs = torch.zeros(M, dtype=torch.long)
        result = GridResult(self.members, best, best_epoch, n_epochs)
        g = torch.Generator().manual_seed(self.seed)  # batch order, shared by all members
        g_dropout = torch.Generator().manual_seed(self.seed + 1)
        for epoch in range(c.max_epochs):
            if not active.any():
                break
            order = torch.randperm(N, generator=g)
            for start in range(0, N, c.batch_size):
                idx = order[start:start + c.batch_size]
                logits = self._forward(params, x_train[:, idx], True, g_dropout)
                loss = loss_fn(c.task_type, logits, y_train[idx]).sum()  # members are independent
                grads = torch.autograd.grad(loss, list(params.values()))
                n_updates += 1
                with torch.no_grad():
                    for (name, p), grad in zip(params.items(), grads):
                        self._adam(p, grad, adam[name], lr * active, n_updates)
            with torch.no_grad():
                score = self._evaluate(params, valid, valid_groups)
            result.valid_curve.append(score)
            n_epochs += active
            improved = active & (score > best)
            best[improved], best_epoch[improved] = score[improved], epoch
            for k, p in params.items():
                best_params[k][improved] = p.detach()[improved]
            # ReduceLROnPlateau (mode max, relative threshold 1e-4, as torch's defaults)
            better = score > plateau_best * (1 + 1e-4)
            plateau_best = torch.where(better, score, plateau_best)
            plateau_bad = torch.where(better, 0, plateau_bad + 1)
            reduce = active & (plateau_bad > c.plateau_patience)
            lr = torch.where(reduce, lr * c.plateau_factor, lr)
            plateau_bad = torch.where(reduce, 0, plateau_bad)
            active &= epoch - best_epoch < c.early_stop_patience
        with torch.no_grad():
            result.test_outputs = self._track_outputs(best_params, test[0], test_groups)
        return result

    def _adam(self, p: torch.Tensor, grad: torch.Tensor, state: tuple, lr: torch.Tensor, t: int) -> None:
        """torch.optim.Adam's update with one learning rate per member (lr [M]; 0 = frozen).

        The moments of a frozen member still move, but its weights never do, and it is never
        unfrozen, so this does not change any result.
        """
        m, v = state
        b1, b2 = self.config.betas
        m.mul_(b1).add_(grad, alpha=1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        # p -= lr_m / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), in place: the tensors
        # are large ([M, H, 512]) and the update is memory-bound. A frozen member (lr 0) gets an
        # infinite denominator, i.e. no update.
        step_size = (lr / (1 - b1 ** t)).view(-1, *([1] * (p.dim() - 1)))
        denom = v.sqrt().div_(math.sqrt(1 - b2 ** t)).add_(self.config.eps).div_(step_size)
        p.addcdiv_(m, denom, value=-1.0)

    def _track_outputs(self, params: dict, x: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Window outputs averaged per track: [M, n_tracks, C]."""
        out = outputs(self.config.task_type, self._forward(params, x, False, None))
        n_tracks = int(groups.max()) + 1
        sums = torch.zeros(out.shape[0], n_tracks, out.shape[2]).index_add_(1, groups, out)
        return sums / torch.bincount(groups, minlength=n_tracks).clamp(min=1)[None, :, None]

    def _evaluate(self, params: dict, split: tuple, groups: torch.Tensor) -> torch.Tensor:
        return self.metric(self._track_outputs(params, split[0], groups), split[1])
