"""One probe trained the ordinary way: an nn.Module MLP, torch.optim.Adam, torch's
ReduceLROnPlateau and patience-based early stopping, one batch at a time.

It is the reference the batched grid (`probe.GridTrainer`) is tested against and benchmarked
against: same initial weights, batch order and dropout masks, hence the same numbers.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .probe import WEIGHTED, GridResult, Member, ProbeConfig, dropout_mask, loss_fn, member_generator, member_init, outputs


class MLPProbe(nn.Module):
    """Layer choice (one hidden state, or a softmax-weighted sum) -> Linear -> ReLU -> dropout -> Linear."""

    def __init__(self, member: Member, init: dict[str, torch.Tensor], dropout: float, g: torch.Generator):
        super().__init__()
        in_dim, hidden = init["w1"].shape
        self.layer, self.dropout, self.g = member.layer, dropout, g
        self.mix = nn.Parameter(init["mix"].clone()) if member.layer == WEIGHTED else None
        self.fc1, self.fc2 = nn.Linear(in_dim, hidden), nn.Linear(hidden, init["w2"].shape[1])
        with torch.no_grad():
            self.fc1.weight.copy_(init["w1"].T), self.fc1.bias.copy_(init["b1"])
            self.fc2.weight.copy_(init["w2"].T), self.fc2.bias.copy_(init["b2"])

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Features x [n_layers, N, H] at rows idx (all if None) -> logits [B, C]."""
        if self.mix is None:  # read only the chosen layer
            h = x[self.layer] if idx is None else x[self.layer, idx]
        else:
            h = torch.einsum("l,lbh->bh", torch.softmax(self.mix, 0), x if idx is None else x[:, idx])
        h = torch.relu(self.fc1(h))
        if self.training and self.dropout > 0:
            h = h * dropout_mask(self.g, h.shape, self.dropout)
        return self.fc2(h)


def train_alone(config: ProbeConfig, member: Member, n_out: int, seed: int,
                metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], train: tuple, valid: tuple,
                test: tuple, valid_groups: torch.Tensor, test_groups: torch.Tensor) -> GridResult:
    """Train one member; returns a one-member GridResult (same fields as the grid's)."""
    x, y = train
    n_layers, n, dim = x.shape
    g = member_generator(seed, member)
    probe = MLPProbe(member, member_init(g, member, n_layers, dim, config.hidden_dim, n_out), config.dropout, g)
    optimizer = torch.optim.Adam(probe.parameters(), lr=member.lr, betas=config.betas, eps=config.eps)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=config.plateau_patience,
                                                         factor=config.plateau_factor)

    def track_outputs(features: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        out = outputs(config.task_type, probe(features)[None])
        n_tracks = int(groups.max()) + 1
        sums = torch.zeros(1, n_tracks, out.shape[2]).index_add_(1, groups, out)
        return sums / torch.bincount(groups, minlength=n_tracks).clamp(min=1)[None, :, None]

    order = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, curve = -math.inf, -1, probe.state_dict(), []
    for epoch in range(config.max_epochs):
        probe.train()
        for idx in torch.randperm(n, generator=order).split(config.batch_size):
            loss = loss_fn(config.task_type, probe(x, idx)[None], y[idx]).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        probe.eval()
        with torch.no_grad():
            score = metric(track_outputs(valid[0], valid_groups), valid[1]).item()
        curve.append(score)
        if score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.clone() for k, v in probe.state_dict().items()}
        plateau.step(score)
        if epoch - best_epoch >= config.early_stop_patience:
            break
    probe.load_state_dict(best_state)
    with torch.no_grad():
        test_out = track_outputs(test[0], test_groups)
    return GridResult([member], torch.tensor([best]), torch.tensor([best_epoch]), torch.tensor([len(curve)]),
                      [torch.tensor([s]) for s in curve], test_out)
