"""The batched probe grid gives the numbers of each member trained alone with torch.optim."""

import pytest
import torch
from torch import nn

from melos.evaluation.probe import WEIGHTED, GridTrainer, Member, ProbeConfig
from melos.evaluation.probe_alone import train_alone


def accuracy(track_outputs, labels):
    return (track_outputs.argmax(-1) == labels).float().mean(-1)


def data(seed=0, n_layers=3, n=96, dim=8, n_classes=3):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(n_classes, (n,), generator=g)
    x = torch.randn(n_layers, n, dim, generator=g)
    x[1] += 1.5 * nn.functional.one_hot(labels, dim)[:, :dim].float()  # layer 1 is informative
    return x, labels


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_grid_equals_members_trained_alone(dropout):
    config = ProbeConfig("multiclass", hidden_dim=16, dropout=dropout, batch_size=32, max_epochs=12,
                         plateau_patience=1, early_stop_patience=3)
    train, valid, test = data(0), data(1, n=40), data(2, n=40)
    # weighted members first: the grid must not depend on the members' order
    members = [Member(layer, lr) for layer in (WEIGHTED, 0, 1, 2) for lr in (1e-3, 3e-2)]
    groups = torch.arange(40)
    result = GridTrainer(config, members, 3, seed=5, metric=accuracy).fit(train, valid, test, groups, groups)
    for i, member in enumerate(members):
        alone = train_alone(config, member, 3, 5, accuracy, train, valid, test, groups, groups)
        n = alone.n_epochs.item()
        assert result.best_valid[i].item() == pytest.approx(alone.best_valid.item(), abs=1e-6), member
        assert result.best_epoch[i].item() == alone.best_epoch.item(), member
        assert result.n_epochs[i].item() == n, member
        assert [c[i].item() for c in result.valid_curve[:n]] == pytest.approx(
            [c.item() for c in alone.valid_curve], abs=1e-6)
        assert torch.allclose(result.test_outputs[i], alone.test_outputs[0], atol=1e-5), member
    assert result.best_valid[members.index(Member(1, 3e-2))] > result.best_valid[members.index(Member(0, 3e-2))]
    assert (result.n_epochs < config.max_epochs).any()  # early stopping happened


def test_dropout_changes_the_trajectory():
    train, valid = data(0), data(1, n=40)
    groups = torch.arange(40)
    runs = [GridTrainer(ProbeConfig("multiclass", hidden_dim=16, dropout=p, max_epochs=3), [Member(1, 1e-2)], 3,
                        seed=0, metric=accuracy).fit(train, valid, valid, groups, groups).test_outputs
            for p in (0.0, 0.5)]
    assert not torch.allclose(runs[0], runs[1])


def test_windows_are_averaged_per_track():
    config = ProbeConfig("multiclass", hidden_dim=4, dropout=0.0, max_epochs=1)
    train = data(0, n=16)
    trainer = GridTrainer(config, [Member(0, 1e-3)], 3, seed=0, metric=accuracy)
    result = trainer.fit(train, (train[0], train[1]), (train[0], None), torch.arange(16), torch.arange(16) // 4)
    windows = GridTrainer(config, [Member(0, 1e-3)], 3, seed=0, metric=accuracy).fit(
        train, (train[0], train[1]), (train[0], None), torch.arange(16), torch.arange(16)).test_outputs
    assert result.test_outputs.shape == (1, 4, 3)
    assert torch.allclose(result.test_outputs[0], windows[0].view(4, 4, 3).mean(1), atol=1e-6)
