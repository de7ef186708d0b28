"""Vectorised probe metrics over a leading "member" dimension.

A probing grid trains many probes at once (layers x learning rates) and needs
each member's validation metric every epoch for early stopping. Every function
here therefore takes predictions shaped ``[M, N, ...]`` (M members, N examples)
and shared targets shaped ``[N, ...]``, and returns one value per member.

Scores are cast to float32 before anything else, so bf16 probes are scored
exactly like their float32-cast outputs. Counting statistics (ranks, sums of
ranks) use float64 where float32 could lose integer exactness on large N.
Each metric matches its scikit-learn / mir_eval counterpart, which serve as the
references in the tests.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "KEYS",
    "KEY_LABELS",
    "NO_KEY",
    "accuracy",
    "average_precision_macro",
    "average_precision_per_tag",
    "f1_at_threshold",
    "key_accuracy",
    "key_score_table",
    "key_weighted_score",
    "macro_accuracy",
    "r2",
    "roc_auc_macro",
    "roc_auc_per_tag",
]

_PITCHES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

KEYS: tuple[str, ...] = tuple(f"{p} major" for p in _PITCHES) + tuple(
    f"{p} minor" for p in _PITCHES
)
"""The 24 keys in mir_eval spelling: index ``pc`` is major, ``12 + pc`` minor."""

NO_KEY = "X"
"""mir_eval's "no / uncategorised key" label; index 24 in ``KEY_LABELS``."""

KEY_LABELS: tuple[str, ...] = KEYS + (NO_KEY,)
"""Indices accepted by the key metrics: the 24 keys followed by ``"X"``."""


def _as_float32(x: Tensor) -> Tensor:
    return x.to(torch.float32)


def _check_shapes(preds: Tensor, targets: Tensor, pred_ndim: int) -> None:
    if preds.ndim != pred_ndim or tuple(preds.shape[1:]) != tuple(targets.shape):
        raise ValueError(
            f"expected predictions [M, *targets.shape] with {pred_ndim} dims, got "
            f"predictions {tuple(preds.shape)} and targets {tuple(targets.shape)}"
        )


def _nanmean_members(per_tag: Tensor) -> Tensor:
    """Mean over the last dim ignoring NaN columns (NaN if all are NaN)."""
    valid = ~torch.isnan(per_tag)
    total = torch.where(valid, per_tag, torch.zeros_like(per_tag)).sum(-1)
    return total / valid.sum(-1)


def roc_auc_per_tag(scores: Tensor, targets: Tensor) -> Tensor:
    """Per-tag ROC-AUC via the Mann-Whitney rank statistic (ties: average ranks).

    Equals sklearn ``roc_auc_score`` per tag, including tied scores.

    Args:
        scores: ``[M, N, L]`` scores or logits (any monotone transform works).
        targets: ``[N, L]`` binary targets.

    Returns:
        ``[M, L]`` float32 AUCs; NaN for tags lacking a positive or a negative.
    """
    _check_shapes(scores, targets, 3)
    x = _as_float32(scores).transpose(1, 2).contiguous()  # [M, L, N]
    y = targets.to(torch.bool).T.to(x.device)  # [L, N]
    sorted_x = x.sort(dim=-1).values
    below = torch.searchsorted(sorted_x, x, right=False)
    upto = torch.searchsorted(sorted_x, x, right=True)
    ranks = (below + upto + 1).to(torch.float64) / 2  # 1-based average ranks
    n_pos = y.sum(-1).to(torch.float64)  # [L]
    n_neg = y.shape[-1] - n_pos
    pos_rank_sum = (ranks * y).sum(-1)  # [M, L]
    auc = (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    defined = (n_pos > 0) & (n_neg > 0)
    return torch.where(defined, auc, torch.nan).to(torch.float32)


def roc_auc_macro(scores: Tensor, targets: Tensor) -> tuple[Tensor, int]:
    """Macro ROC-AUC over tags with at least one positive and one negative.

    Args:
        scores: ``[M, N, L]`` scores.
        targets: ``[N, L]`` binary targets.

    Returns:
        ``([M] macro AUC, number of dropped tags)``; AUC is NaN if all are dropped.
    """
    per_tag = roc_auc_per_tag(scores, targets)
    n_pos = targets.to(torch.bool).sum(0)
    n_dropped = int(((n_pos == 0) | (n_pos == targets.shape[0])).sum())
    return _nanmean_members(per_tag), n_dropped


def average_precision_per_tag(scores: Tensor, targets: Tensor) -> Tensor:
    """Per-tag average precision, as sklearn ``average_precision_score``.

    Step-wise sum ``sum_k (R_k - R_{k-1}) P_k`` over thresholds at the distinct
    score values (no interpolation): each positive contributes the precision
    at the end of its tie group, divided by the number of positives.

    Args:
        scores: ``[M, N, L]`` scores.
        targets: ``[N, L]`` binary targets.

    Returns:
        ``[M, L]`` float32 APs; NaN for tags without positives.
    """
    _check_shapes(scores, targets, 3)
    x = _as_float32(scores).transpose(1, 2)  # [M, L, N]
    y = targets.to(torch.bool).T.to(x.device)  # [L, N]
    neg_sorted, order = (-x).sort(dim=-1)  # ascending in -x = descending in x
    y_sorted = y.expand_as(order).gather(-1, order).to(torch.float64)
    cum_tp = y_sorted.cumsum(-1)
    neg_sorted = neg_sorted.contiguous()
    group_end = torch.searchsorted(neg_sorted, neg_sorted, right=True) - 1
    precision = cum_tp.gather(-1, group_end) / (group_end + 1).to(torch.float64)
    n_pos = y.sum(-1).to(torch.float64)  # [L]
    ap = (y_sorted * precision).sum(-1) / n_pos
    return torch.where(n_pos > 0, ap, torch.nan).to(torch.float32)


def average_precision_macro(scores: Tensor, targets: Tensor) -> tuple[Tensor, int]:
    """Macro average precision over tags with at least one positive.

    Args:
        scores: ``[M, N, L]`` scores.
        targets: ``[N, L]`` binary targets.

    Returns:
        ``([M] macro AP, number of dropped tags)``; AP is NaN if all are dropped.
    """
    per_tag = average_precision_per_tag(scores, targets)
    n_dropped = int((targets.to(torch.bool).sum(0) == 0).sum())
    return _nanmean_members(per_tag), n_dropped


def f1_at_threshold(
    probs: Tensor, targets: Tensor, threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    """Micro and macro F1 of the predictions ``probs >= threshold``.

    Matches sklearn ``f1_score(average=..., zero_division=0)``: the macro mean
    runs over *all* tags, and a tag with no positives and no positive
    predictions (or any tag with ``tp + fp + fn == 0``) scores 0.

    Args:
        probs: ``[M, N, L]`` probabilities.
        targets: ``[N, L]`` binary targets.
        threshold: Decision threshold; a prediction is positive when ``>=``.

    Returns:
        ``([M] micro F1, [M] macro F1)`` as float32.
    """
    _check_shapes(probs, targets, 3)
    pred = _as_float32(probs) >= threshold  # [M, N, L]
    y = targets.to(torch.bool).to(pred.device)
    tp = (pred & y).sum(1).to(torch.float64)  # [M, L]
    fp = (pred & ~y).sum(1).to(torch.float64)
    fn = (~pred & y).sum(1).to(torch.float64)

    def _f1(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        denom = 2 * tp + fp + fn
        return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.zeros_like(tp))

    micro = _f1(tp.sum(-1), fp.sum(-1), fn.sum(-1))
    macro = _f1(tp, fp, fn).mean(-1)
    return micro.to(torch.float32), macro.to(torch.float32)


def _hits(logits_or_probs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    _check_shapes(logits_or_probs[..., 0], labels, 2)
    x = _as_float32(logits_or_probs)
    labels = labels.to(device=x.device, dtype=torch.long)
    return x.argmax(-1) == labels, labels


def accuracy(logits_or_probs: Tensor, labels: Tensor) -> Tensor:
    """Exact-match accuracy of the argmax class.

    Args:
        logits_or_probs: ``[M, N, C]`` class scores.
        labels: ``[N]`` integer class labels.

    Returns:
        ``[M]`` float32 accuracies.
    """
    hits, _ = _hits(logits_or_probs, labels)
    return hits.to(torch.float32).mean(-1)


def macro_accuracy(logits_or_probs: Tensor, labels: Tensor) -> Tensor:
    """Mean per-class recall over classes present in ``labels``.

    Equals sklearn ``balanced_accuracy_score``; robust to class imbalance.

    Args:
        logits_or_probs: ``[M, N, C]`` class scores.
        labels: ``[N]`` integer class labels.

    Returns:
        ``[M]`` float32 balanced accuracies.
    """
    hits, labels = _hits(logits_or_probs, labels)
    n_classes = logits_or_probs.shape[-1]
    onehot = torch.nn.functional.one_hot(labels, n_classes).to(torch.float64)
    counts = onehot.sum(0)  # [C]
    correct = hits.to(torch.float64) @ onehot  # [M, C]
    present = counts > 0
    return (correct[:, present] / counts[present]).mean(-1).to(torch.float32)


def r2(preds: Tensor, targets: Tensor) -> Tensor:
    """Coefficient of determination per output dimension.

    Equals sklearn ``r2_score(multioutput="raw_values")`` including its
    constant-target convention (1.0 if predicted perfectly, else 0.0).

    Args:
        preds: ``[M, N, D]`` predictions.
        targets: ``[N, D]`` regression targets.

    Returns:
        ``[M, D]`` float32 R^2 values.

    Raises:
        ValueError: If ``targets`` contain NaN (missing labels must be removed
            upstream, otherwise every member would silently score NaN).
    """
    _check_shapes(preds, targets, 3)
    y = _as_float32(targets).to(preds.device)
    if torch.isnan(y).any():
        raise ValueError(
            "r2: regression targets contain NaN; drop or impute missing labels first"
        )
    p = _as_float32(preds).to(torch.float64)
    y = y.to(torch.float64)
    ss_res = ((p - y) ** 2).sum(1)  # [M, D]
    ss_tot = ((y - y.mean(0)) ** 2).sum(0).expand_as(ss_res)
    score = 1 - ss_res / ss_tot
    constant = torch.where(ss_res == 0, 1.0, 0.0).to(score)
    return torch.where(ss_tot > 0, score, constant).to(torch.float32)


def _key_score(ref: int, est: int) -> float:
    """mir_eval ``weighted_score`` rules on ``KEY_LABELS`` indices."""
    if ref == est:
        return 1.0
    if KEY_LABELS[ref] == NO_KEY or KEY_LABELS[est] == NO_KEY:
        return 0.0
    ref_pc, ref_minor = ref % 12, ref >= 12
    est_pc, est_minor = est % 12, est >= 12
    interval = (est_pc - ref_pc) % 12
    if ref_minor == est_minor:
        return 0.5 if interval == 7 else 0.0  # estimate a perfect fifth above
    if interval == (3 if ref_minor else 9):
        return 0.3  # relative major / minor
    if interval == 0:
        return 0.2  # parallel major / minor
    return 0.0


def key_score_table(device: torch.device | str | None = None) -> Tensor:
    """``[25, 25]`` table ``T[ref, est]`` of mir_eval key weighted scores.

    Args:
        device: Device of the returned tensor.

    Returns:
        float32 table indexed by ``KEY_LABELS`` positions (24 keys, then ``"X"``).
    """
    n = len(KEY_LABELS)
    values = [[_key_score(r, e) for e in range(n)] for r in range(n)]
    return torch.tensor(values, dtype=torch.float32, device=device)


def key_weighted_score(pred_idx: Tensor, true_idx: Tensor) -> Tensor:
    """Mean mir_eval weighted key score (1 / 0.5 fifth / 0.3 relative / 0.2 parallel).

    Args:
        pred_idx: ``[M, N]`` predicted indices into ``KEY_LABELS``.
        true_idx: ``[N]`` reference indices into ``KEY_LABELS``.

    Returns:
        ``[M]`` float32 mean scores.
    """
    _check_shapes(pred_idx, true_idx, 2)
    table = key_score_table(pred_idx.device)
    ref = true_idx.to(device=pred_idx.device, dtype=torch.long)
    return table[ref.expand_as(pred_idx), pred_idx.long()].mean(-1)


def key_accuracy(pred_idx: Tensor, true_idx: Tensor) -> Tensor:
    """Exact key (tonic and mode) accuracy.

    Args:
        pred_idx: ``[M, N]`` predicted indices into ``KEY_LABELS``.
        true_idx: ``[N]`` reference indices into ``KEY_LABELS``.

    Returns:
        ``[M]`` float32 accuracies.
    """
    _check_shapes(pred_idx, true_idx, 2)
    ref = true_idx.to(device=pred_idx.device, dtype=torch.long)
    return (pred_idx.long() == ref).to(torch.float32).mean(-1)
