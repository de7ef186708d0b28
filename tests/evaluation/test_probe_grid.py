"""The batched probe grid gives the numbers of each member trained alone with torch.optim."""

import math

import pytest
import torch
from torch import nn

from melos.evaluation.probe import WEIGHTED, GridTrainer, Member, ProbeConfig, member_init, outputs


def accuracy(track_outputs, labels):
    return (track_outputs.argmax(-1) == labels).float().mean(-1)


def data(seed=0, n_layers=3, n=96, dim=8, n_classes=3):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(n_classes, (n,), generator=g)
    x = torch.randn(n_layers, n, dim, generator=g)
    x[1] += 1.5 * nn.functional.one_hot(labels, dim)[:, :dim].float()  # layer 1 is informative
    return x, labels


def train_member_alone(config, member, train, valid, test, seed, n_out):
    """Reference: nn.Linear MLP, torch.optim.Adam, torch's ReduceLROnPlateau, patience-based stop."""
    x, y = train
    n_layers, n, dim = x.shape
    init = member_init(seed, member, n_layers, dim, config.hidden_dim, n_out)
    mix = nn.Parameter(init["mix"].clone())
    mlp = nn.Sequential(nn.Linear(dim, config.hidden_dim), nn.ReLU(), nn.Linear(config.hidden_dim, n_out))
    with torch.no_grad():
        mlp[0].weight.copy_(init["w1"].T), mlp[0].bias.copy_(init["b1"])
        mlp[2].weight.copy_(init["w2"].T), mlp[2].bias.copy_(init["b2"])
    params = list(mlp.parameters()) + ([mix] if member.layer == WEIGHTED else [])
    optimizer = torch.optim.Adam(params, lr=member.lr, betas=config.betas, eps=config.eps)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=config.plateau_patience,
                                                         factor=config.plateau_factor)

    def features(xs):
        weights = torch.softmax(mix, 0) if member.layer == WEIGHTED else nn.functional.one_hot(
            torch.tensor(member.layer), n_layers).float()
        return torch.einsum("l,lbh->bh", weights, xs)

    g = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, curve = -math.inf, -1, None, []
    for epoch in range(config.max_epochs):
        order = torch.randperm(n, generator=g)
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            loss = nn.functional.cross_entropy(mlp(features(x[:, idx])), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            score = (mlp(features(valid[0])).argmax(-1) == valid[1]).float().mean().item()
        curve.append(score)
        if score > best:
            best, best_epoch = score, epoch
            best_state = [p.detach().clone() for p in mlp.parameters()] + [mix.detach().clone()]
        plateau.step(score)
        if epoch - best_epoch >= config.early_stop_patience:
            break
    with torch.no_grad():
        for p, b in zip(list(mlp.parameters()) + [mix], best_state):
            p.copy_(b)
        test_out = outputs("multiclass", mlp(features(test[0]))[None])[0]
    return best, best_epoch, curve, test_out


def test_grid_equals_members_trained_alone():
    config = ProbeConfig("multiclass", hidden_dim=16, dropout=0.0, batch_size=32, max_epochs=12,
                         plateau_patience=1, early_stop_patience=3)
    train, valid, test = data(0), data(1, n=40), data(2, n=40)
    members = [Member(layer, lr) for layer in (0, 1, 2, WEIGHTED) for lr in (1e-3, 3e-2)]
    groups = torch.arange(40)
    result = GridTrainer(config, members, 3, seed=5, metric=accuracy).fit(train, valid, test, groups, groups)
    for i, member in enumerate(members):
        best, best_epoch, curve, test_out = train_member_alone(config, member, train, valid, test, 5, 3)
        assert result.best_valid[i].item() == pytest.approx(best, abs=1e-6), member
        assert result.best_epoch[i].item() == best_epoch, member
        assert result.n_epochs[i].item() == len(curve), member
        assert [c[i].item() for c in result.valid_curve[:len(curve)]] == pytest.approx(curve, abs=1e-6)
        assert torch.allclose(result.test_outputs[i], test_out, atol=1e-5), member
    assert result.best_valid[members.index(Member(1, 3e-2))] > result.best_valid[members.index(Member(0, 3e-2))]
    assert (result.n_epochs < config.max_epochs).any()  # early stopping happened


def test_windows_are_averaged_per_track():
    config = ProbeConfig("multiclass", hidden_dim=4, dropout=0.0, max_epochs=1)
    train = data(0, n=16)
    trainer = GridTrainer(config, [Member(0, 1e-3)], 3, seed=0, metric=accuracy)
    result = trainer.fit(train, (train[0], train[1]), (train[0], None), torch.arange(16), torch.arange(16) // 4)
    windows = GridTrainer(config, [Member(0, 1e-3)], 3, seed=0, metric=accuracy).fit(
        train, (train[0], train[1]), (train[0], None), torch.arange(16), torch.arange(16)).test_outputs
    assert result.test_outputs.shape == (1, 4, 3)
    assert torch.allclose(result.test_outputs[0], windows[0].view(4, 4, 3).mean(1), atol=1e-6)
