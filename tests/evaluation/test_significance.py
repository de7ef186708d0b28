"""The paired bootstrap: its point estimate, its interval against the normal approximation."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from melos.evaluation.metrics import roc_auc_macro
from melos.evaluation.significance import paired_difference


def _mean_output(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return outputs.mean(dim=(1, 2))


def test_difference_is_the_seed_mean_macro_auc_difference():
    g = torch.Generator().manual_seed(0)
    targets = (torch.rand(40, 4, generator=g) < 0.4).float()
    a = torch.rand(3, 40, 4, generator=g) + targets
    b = torch.rand(2, 40, 4, generator=g) + 0.3 * targets

    def sklearn_auc(outputs):  # independent reference: sklearn per seed, macro over tags
        return np.mean([roc_auc_score(targets.numpy(), o.numpy(), average="macro") for o in outputs])

    result = paired_difference(a, b, targets, lambda o, y: roc_auc_macro(o, y)[0], resamples=200)
    assert result["difference"] == pytest.approx(sklearn_auc(a) - sklearn_auc(b), abs=1e-5)
    assert result["low"] > 0 and result["p_better"] == 1.0


def test_interval_matches_the_normal_approximation():
    # Metric = mean output, one seed: the difference is a mean of T paired differences d_i, and its
    # bootstrap interval is close to mean(d) ± 1.96 * sd(d) / sqrt(T).
    g = torch.Generator().manual_seed(1)
    n = 400
    a = torch.randn(1, n, 1, generator=g) + 0.1
    b = 0.5 * a + torch.randn(1, n, 1, generator=g)
    d = (a - b).flatten().double()
    half = 1.96 * float(d.std(correction=0)) / math.sqrt(n)
    result = paired_difference(a, b, torch.zeros(n, 1), _mean_output, resamples=4000)
    assert result["difference"] == pytest.approx(float(d.mean()), abs=1e-6)
    assert result["low"] == pytest.approx(float(d.mean()) - half, abs=0.1 * half)
    assert result["high"] == pytest.approx(float(d.mean()) + half, abs=0.1 * half)


def test_identical_models_differ_by_nothing():
    outputs = torch.rand(2, 30, 3)
    targets = (torch.rand(30, 3) < 0.5).float()
    result = paired_difference(outputs, outputs.clone(), targets, lambda o, y: roc_auc_macro(o, y)[0], resamples=50)
    assert result == {"difference": 0.0, "low": 0.0, "high": 0.0, "p_better": 0.0}


def test_outputs_on_different_tracks_are_refused():
    with pytest.raises(ValueError, match="30 and 20 tracks"):
        paired_difference(torch.rand(1, 30, 2), torch.rand(1, 20, 2), torch.zeros(30, 2), _mean_output)
