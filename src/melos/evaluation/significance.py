"""Is one model better than another on the same test tracks? A paired bootstrap over the tracks.

The protocol's ± is the spread over probe seeds: it says nothing about the test set, which at a
few dozen tracks limits more (60 tracks: about ±0.02 macro ROC-AUC). Resampling the test tracks,
with both models' outputs taken on the same resample, gives a confidence interval for the
difference of their metrics (percentile bootstrap). A resample in which the metric is undefined
(macro ROC-AUC with no tag both present and absent) is left out of the interval.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # outputs [S, T, C], targets [T, ...] -> [S]


def paired_difference(a: torch.Tensor, b: torch.Tensor, targets: torch.Tensor, metric: Metric,
                      resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """metric(a) - metric(b), each averaged over probe seeds, with its bootstrap interval.

    Args: a, b: [S, T, C] track-level test outputs of two models per probe seed (S may differ),
    on the same T test tracks; targets: their labels. Returns `difference`, `low`, `high` (the
    `confidence` interval) and `p_better`, the share of resamples in which a scores higher.
    """
    if a.shape[1] != b.shape[1] or a.shape[1] != targets.shape[0]:
        raise ValueError(f"outputs cover {a.shape[1]} and {b.shape[1]} tracks, targets {targets.shape[0]}")

    def difference(index: np.ndarray) -> float:
        index = torch.as_tensor(index)
        return float(metric(a[:, index], targets[index]).nanmean() - metric(b[:, index], targets[index]).nanmean())

    n = targets.shape[0]
    rng = np.random.default_rng(seed)
    draws = np.array([difference(rng.integers(0, n, n)) for _ in range(resamples)])
    draws = draws[~np.isnan(draws)]
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2]) if draws.size else (np.nan, np.nan)
    return {"difference": difference(np.arange(n)), "low": float(low), "high": float(high),
            "p_better": float(np.mean(draws > 0)) if draws.size else float("nan")}
