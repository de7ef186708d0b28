"""The whole probe grid, batched vs one member at a time, on cached features of synthetic shape.

    python benchmarks/probe_grid.py                       # the issue's size: 10,000 / 1,000 / 1,000 clips
    python benchmarks/probe_grid.py --n-train 2000 --epochs 3    # a quick run

13 layers x 768, 50 tags (multi-label), 14 layer choices (13 single layers + weighted sum) x 6
learning rates x 1 seed, a fixed number of epochs (early stopping off), dropout 0.2, macro
ROC-AUC on the validation split every epoch. In this process, three ways to train the 84 members:
the batched grid (`GridTrainer`, all at once); each member the ordinary way (`train_alone`:
nn.Module, torch.optim.Adam, ReduceLROnPlateau); and each member as a grid of one. Prints wall
times, speed-ups and the largest difference of the members' best validation scores.
"""

from __future__ import annotations

import argparse
import time

import torch

from melos.evaluation.metrics import roc_auc_macro
from melos.evaluation.probe import LEARNING_RATES, WEIGHTED, GridTrainer, Member, ProbeConfig
from melos.evaluation.probe_alone import train_alone


def split(n: int, n_layers: int, dim: int, n_tags: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    tags = torch.rand(n, n_tags, generator=g) < 0.1
    x = torch.randn(n_layers, n, dim, generator=g)
    x[6, :, :n_tags] += tags.float()  # a middle layer carries the tags
    return x, tags.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-eval", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    n_layers, dim, n_tags = 13, 768, 50
    g = torch.Generator().manual_seed(0)
    train, valid, test = (split(n, n_layers, dim, n_tags, g) for n in (args.n_train, args.n_eval, args.n_eval))
    groups = torch.arange(args.n_eval)
    members = [Member(layer, lr) for layer in [*range(n_layers), WEIGHTED] for lr in LEARNING_RATES]
    config = ProbeConfig("multilabel", hidden_dim=args.hidden, max_epochs=args.epochs,
                         early_stop_patience=args.epochs + 1)

    def metric(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return roc_auc_macro(outputs, targets)[0]

    def timed(fn) -> tuple[torch.Tensor, float]:
        start = time.perf_counter()
        scores = fn()
        return scores, time.perf_counter() - start

    def grid(group: list[Member]) -> torch.Tensor:
        return GridTrainer(config, group, n_tags, 0, metric).fit(train, valid, test, groups, groups).best_valid

    def ordinary() -> torch.Tensor:
        return torch.cat([train_alone(config, m, n_tags, 0, metric, train, valid, test, groups, groups).best_valid
                          for m in members])

    batched, t_batched = timed(lambda: grid(members))
    alone, t_alone = timed(ordinary)
    ones, t_ones = timed(lambda: torch.cat([grid([m]) for m in members]))
    print(f"{len(members)} members, {args.n_train}/{args.n_eval}/{args.n_eval} clips, {n_layers} x {dim}, "
          f"{n_tags} tags, {args.epochs} epochs, hidden {args.hidden}, CPU, {torch.get_num_threads()} threads")
    print(f"  batched grid:                     {t_batched:8.1f} s")
    print(f"  one at a time, ordinary PyTorch:  {t_alone:8.1f} s  ({t_alone / t_batched:.1f}x the batched time)")
    print(f"  one at a time, grids of one:      {t_ones:8.1f} s  ({t_ones / t_batched:.1f}x)")
    print(f"  max difference of best validation AUC: vs ordinary {(batched - alone).abs().max().item():.2e}, "
          f"vs grids of one {(batched - ones).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
