"""A whole probe grid trained at once: every (layer choice, learning rate) member of one seed
is a slice of stacked weights, trained with batched matmuls on the cached features.

    features [n_layers, N, H] --(per member: one layer, or softmax-weighted sum)--> [M, N, H]
    MLP per member: Linear(H -> 512) -> ReLU -> dropout -> Linear(512 -> C)   (torch.baddbmm)
    torch.optim.Adam (fused) with one parameter group per member, ReduceLROnPlateau (patience 3)
    and early stopping (patience 10) on the member's validation metric; test uses the member's
    best-on-validation weights.

Members share batches (one shuffle per seed) and each draws its initial weights and dropout
masks from its own generator, so a member trained inside the grid follows the same trajectory
as the member trained alone (`probe_alone.train_alone`, the reference in tests and benchmarks).
Single-layer members read their layer directly (no gradient flows to the features); only
weighted-sum members backpropagate into their mixing weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch.optim.adam import adam

WEIGHTED = -1  # layer choice: learnable softmax-weighted sum over all layers
LEARNING_RATES = (5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2)
EVAL_CHUNK = 256  # windows per forward pass when scoring a split


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


@dataclass(frozen=True)
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
    best_states: list[dict[str, torch.Tensor]] = field(default_factory=list)  # per member: w1, b1, w2, b2 (+ mix)


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


def member_generator(seed: int, member: Member) -> torch.Generator:
    """The member's own random stream: its initial weights, then one dropout mask per step."""
    return torch.Generator().manual_seed(seed * 1_000_003 + (member.layer + 1) * 1_009
                                         + int(member.lr * 1e9) % 1_000_003)


def member_init(g: torch.Generator, member: Member, n_layers: int, in_dim: int, hidden: int,
                n_out: int) -> dict[str, torch.Tensor]:
    """Initial weights of one member (nn.Linear's default init); `mix` only for a weighted sum."""
    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        bound = 1 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=g) * 2 - 1) * bound

    params = {"w1": uniform((in_dim, hidden), in_dim), "b1": uniform((hidden,), in_dim),
              "w2": uniform((hidden, n_out), hidden), "b2": uniform((n_out,), hidden)}
    return {"mix": torch.zeros(n_layers), **params} if member.layer == WEIGHTED else params


def dropout_mask(g: torch.Generator, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """Inverted dropout: kept units scaled by 1 / (1 - p)."""
    return (torch.rand(shape, generator=g) >= p).float().div_(1 - p)


class _Linear(torch.autograd.Function):
    """x [M, B, H] @ weight [M, H, K] + bias [M, K], per member.

    Backward writes the weight gradient into a buffer reused every step: a fresh [M, H, K]
    tensor (over 100 MB for the full grid) is a new mmap per step, and its page faults cost
    as much as the matmul itself.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, buffer: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.buffer = buffer
        return torch.baddbmm(bias[:, None], x, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        return grad_x, torch.bmm(x.transpose(1, 2), grad, out=ctx.buffer), grad.sum(1), None


class _Stack:
    """Members of one kind (single layers, or weighted sums) as stacked leaf tensors, with
    their Adam moments; `slots[j]` are member j's per-tensor views, what Adam updates."""

    def __init__(self, index: list[int], members: list[Member], inits: list[dict]):
        self.index = index  # positions in the grid's member list
        self.params = {k: torch.stack([inits[i][k] for i in index]).requires_grad_() for k in inits[index[0]]}
        self.weighted = members[index[0]].layer == WEIGHTED
        self.layers = torch.tensor([members[i].layer for i in index])
        self.buffers = {k: torch.empty_like(self.params[k]) for k in ("w1", "w2")}
        moments = [{k: torch.zeros_like(p) for k, p in self.params.items()} for _ in range(2)]
        steps = torch.zeros(len(index), len(self.params))
        self.slots = [([p.detach()[j] for p in self.params.values()], [m[j] for m in moments[0].values()],
                       [v[j] for v in moments[1].values()], list(steps[j].unbind())) for j in range(len(index))]

    def hidden(self, x: torch.Tensor, mix: torch.Tensor | None) -> torch.Tensor:
        """Probe inputs [Mg, B, H] from a batch of features x [n_layers, B, H]."""
        if self.weighted:
            return torch.einsum("ml,lbh->mbh", torch.softmax(mix, dim=-1), x)
        return x.index_select(0, self.layers)

    def logits(self, x: torch.Tensor, params: dict, masks: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden(x, params.get("mix"))
        h = torch.relu(_Linear.apply(h, params["w1"], params["b1"], self.buffers["w1"]))
        if masks is not None:
            h = h * masks
        return _Linear.apply(h, params["w2"], params["b2"], self.buffers["w2"])


def _adam_step(stacks: list[_Stack], grads: list[tuple], lr: list[float], active: list[bool],
               config: ProbeConfig) -> None:
    """torch's fused Adam on every active member's slices, one call per distinct learning rate."""
    by_lr: dict[float, tuple[list, ...]] = {}
    for s, stack_grads in zip(stacks, grads):
        for j, i in enumerate(s.index):
            if active[i]:
                params, exp_avg, exp_avg_sq, steps = s.slots[j]
                lists = by_lr.setdefault(lr[i], ([], [], [], [], []))
                for target, items in zip(lists, (params, [g[j] for g in stack_grads], exp_avg, exp_avg_sq, steps)):
                    target.extend(items)
    for value, (params, grads_, exp_avg, exp_avg_sq, steps) in by_lr.items():
        adam(params, grads_, exp_avg, exp_avg_sq, [], steps, fused=True, amsgrad=False, beta1=config.betas[0],
             beta2=config.betas[1], lr=value, weight_decay=0.0, eps=config.eps, maximize=False)


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

    def fit(self, train: tuple, valid: tuple, test: tuple, valid_groups: torch.Tensor,
            test_groups: torch.Tensor) -> GridResult:
        c, M = self.config, len(self.members)
        x_train, y_train = train
        n_layers, N, H = x_train.shape
        gens = [member_generator(self.seed, m) for m in self.members]
        inits = [member_init(g, m, n_layers, H, c.hidden_dim, self.n_out) for g, m in zip(gens, self.members)]
        kinds = [[i for i, m in enumerate(self.members) if (m.layer == WEIGHTED) == w] for w in (False, True)]
        self.stacks = [_Stack(index, self.members, inits) for index in kinds if index]
        order = torch.tensor([i for s in self.stacks for i in s.index])
        self.inverse = torch.empty_like(order).scatter_(0, order, torch.arange(M))  # stack order -> grid order

        lr = [m.lr for m in self.members]
        best = torch.full((M,), -math.inf)
        best_epoch = torch.full((M,), -1)
        plateau_best = torch.full((M,), -math.inf)
        plateau_bad = torch.zeros(M, dtype=torch.long)
        active = torch.ones(M, dtype=torch.bool)
        best_params = [{k: p.detach().clone() for k, p in s.params.items()} for s in self.stacks]
        n_epochs = torch.zeros(M, dtype=torch.long)
        result = GridResult(self.members, best, best_epoch, n_epochs)
        g = torch.Generator().manual_seed(self.seed)  # batch order, shared by all members
        for epoch in range(c.max_epochs):
            if not active.any():
                break
            batch_order = torch.randperm(N, generator=g)
            for start in range(0, N, c.batch_size):
                idx = batch_order[start:start + c.batch_size]
                x, loss = x_train[:, idx], 0
                for s in self.stacks:
                    masks = None
                    if c.dropout > 0:
                        masks = torch.stack([dropout_mask(gens[i], (len(idx), c.hidden_dim), c.dropout)
                                             for i in s.index])
                    logits = s.logits(x, s.params, masks)
                    loss = loss + loss_fn(c.task_type, logits, y_train[idx]).sum()  # members are independent
                grads = iter(torch.autograd.grad(loss, [p for s in self.stacks for p in s.params.values()]))
                _adam_step(self.stacks, [[next(grads) for _ in s.params] for s in self.stacks], lr,
                           active.tolist(), c)
            with torch.no_grad():
                score = self._evaluate(valid, valid_groups)
            result.valid_curve.append(score)
            n_epochs += active
            improved = active & (score > best)
            best[improved], best_epoch[improved] = score[improved], epoch
            for s, saved in zip(self.stacks, best_params):
                for j in improved[s.index].nonzero().flatten().tolist():
                    for k, p in s.params.items():
                        saved[k][j] = p.detach()[j]
            # ReduceLROnPlateau (mode max, relative threshold 1e-4, as torch's defaults)
            better = score > plateau_best * (1 + 1e-4)
            plateau_best = torch.where(better, score, plateau_best)
            plateau_bad = torch.where(better, 0, plateau_bad + 1)
            reduce = active & (plateau_bad > c.plateau_patience)
            for i in reduce.nonzero().flatten().tolist():
                lr[i] *= c.plateau_factor
            plateau_bad = torch.where(reduce, 0, plateau_bad)
            active &= epoch - best_epoch < c.early_stop_patience
        with torch.no_grad():
            result.test_outputs = self._track_outputs(test[0], test_groups, best_params)
        slices = {i: {k: v[j] for k, v in saved.items()} for s, saved in zip(self.stacks, best_params)
                  for j, i in enumerate(s.index)}
        result.best_states = [slices[i] for i in range(M)]
        return result

    def _track_outputs(self, x: torch.Tensor, groups: torch.Tensor, params: list[dict] | None = None) -> torch.Tensor:
        """Window outputs averaged per track: [M, n_tracks, C] (in grid order)."""
        params = params or [s.params for s in self.stacks]
        out = torch.cat([torch.cat([s.logits(x[:, i:i + EVAL_CHUNK], p) for i in range(0, x.shape[1], EVAL_CHUNK)], 1)
                         for s, p in zip(self.stacks, params)])[self.inverse]
        out = outputs(self.config.task_type, out)
        n_tracks = int(groups.max()) + 1
        sums = torch.zeros(out.shape[0], n_tracks, out.shape[2]).index_add_(1, groups, out)
        return sums / torch.bincount(groups, minlength=n_tracks).clamp(min=1)[None, :, None]

    def _evaluate(self, split: tuple, groups: torch.Tensor) -> torch.Tensor:
        return self.metric(self._track_outputs(split[0], groups), split[1])
