"""Vectorised probe metrics against sklearn / mir_eval references, per member."""

from __future__ import annotations

import itertools

import mir_eval
import numpy as np
import pytest
import torch
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    r2_score,
    roc_auc_score,
)

from melos.evaluation.metrics import (
    KEY_LABELS,
    KEYS,
    NO_KEY,
    accuracy,
    average_precision_macro,
    average_precision_per_tag,
    f1_at_threshold,
    key_accuracy,
    key_score_table,
    key_weighted_score,
    macro_accuracy,
    r2,
    roc_auc_macro,
    roc_auc_per_tag,
)

SEEDS = [0, 1, 2]
M, N, L = 3, 60, 7


def _tagging_case(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tied scores (rounded to 1 decimal); tag 0 has no positives, tag 1 no negatives."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.rand(N, L, generator=g) < 0.3
    targets[:, 0] = False
    targets[:, 1] = True
    scores = torch.rand(M, N, L, generator=g) + 0.4 * targets
    return torch.round(scores * 10) / 10, targets


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_matches_sklearn_with_ties_and_dropped_tags(seed: int) -> None:
    scores, targets = _tagging_case(seed)
    y = targets.numpy()
    auc, n_dropped = roc_auc_macro(scores, targets)
    per_tag = roc_auc_per_tag(scores, targets)
    assert n_dropped == 2
    assert torch.isnan(per_tag[:, :2]).all()
    for m in range(M):
        s = scores[m].numpy()
        ref = [roc_auc_score(y[:, t], s[:, t]) for t in range(2, L)]
        np.testing.assert_allclose(per_tag[m, 2:].numpy(), ref, atol=1e-5)
        assert auc[m].item() == pytest.approx(np.mean(ref), abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_matches_sklearn_with_ties(seed: int) -> None:
    scores, targets = _tagging_case(seed)
    y = targets.numpy()
    ap, n_dropped = average_precision_macro(scores, targets)
    per_tag = average_precision_per_tag(scores, targets)
    assert n_dropped == 1  # only the tag without positives; all-positive tags are kept
    for m in range(M):
        s = scores[m].numpy()
        ref = [average_precision_score(y[:, t], s[:, t]) for t in range(1, L)]
        np.testing.assert_allclose(per_tag[m, 1:].numpy(), ref, atol=1e-5)
        assert ap[m].item() == pytest.approx(np.mean(ref), abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_f1_micro_macro_match_sklearn(seed: int) -> None:
    scores, targets = _tagging_case(seed)
    probs = scores / scores.max()
    probs[0, :5] = 0.5  # predictions exactly at the threshold count as positive
    micro, macro = f1_at_threshold(probs, targets, threshold=0.5)
    y = targets.numpy().astype(int)
    for m in range(M):
        pred = (probs[m].numpy() >= 0.5).astype(int)
        ref_micro = f1_score(y, pred, average="micro", zero_division=0)
        ref_macro = f1_score(y, pred, average="macro", zero_division=0)
        assert micro[m].item() == pytest.approx(ref_micro, abs=1e-5)
        assert macro[m].item() == pytest.approx(ref_macro, abs=1e-5)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_and_balanced_accuracy_match_sklearn(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    c = 6
    labels = torch.randint(0, c - 1, (N,), generator=g)  # class 5 never occurs
    labels[:30] = 0  # imbalance so balanced != plain accuracy
    logits = torch.randn(M, N, c, generator=g)
    logits[..., 0] += 0.8
    acc, bal = accuracy(logits, labels), macro_accuracy(logits, labels)
    for m in range(M):
        pred = logits[m].argmax(-1).numpy()
        assert acc[m].item() == pytest.approx(float((pred == labels.numpy()).mean()), abs=1e-6)
        ref_bal = balanced_accuracy_score(labels.numpy(), pred)
        assert bal[m].item() == pytest.approx(ref_bal, abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_r2_matches_sklearn_raw_values(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    targets = torch.randn(N, 4, generator=g)
    targets[:, 3] = 2.0  # constant target: sklearn scores 0.0 unless predicted exactly
    preds = targets + 0.7 * torch.randn(M, N, 4, generator=g)
    preds[1, :, 3] = 2.0
    out = r2(preds, targets)
    assert out.shape == (M, 4)
    for m in range(M):
        ref = r2_score(targets.numpy(), preds[m].numpy(), multioutput="raw_values")
        np.testing.assert_allclose(out[m].numpy(), ref, atol=1e-5)


def test_r2_rejects_nan_targets() -> None:
    targets = torch.randn(10, 2)
    targets[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        r2(torch.randn(2, 10, 2), targets)


def test_key_table_matches_mir_eval_for_all_pairs() -> None:
    assert len(KEYS) == 24 and KEY_LABELS[-1] == NO_KEY
    table = key_score_table()
    for ref, est in itertools.product(range(len(KEY_LABELS)), repeat=2):
        expected = mir_eval.key.weighted_score(KEY_LABELS[ref], KEY_LABELS[est])
        assert table[ref, est].item() == pytest.approx(expected), (KEY_LABELS[ref], KEY_LABELS[est])


@pytest.mark.parametrize("seed", SEEDS)
def test_key_weighted_score_equals_mean_mir_eval(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    k = len(KEY_LABELS)
    true = torch.randint(0, k, (200,), generator=g)
    pred = torch.randint(0, k, (M, 200), generator=g)
    pred[0] = true  # one perfect member
    keyed = true[:50] < 24
    fifth = (true[:50] % 12 + 7) % 12 + 12 * (true[:50] // 12)  # a fifth above, same mode
    pred[1, :50] = torch.where(keyed, fifth, true[:50])
    score, acc = key_weighted_score(pred, true), key_accuracy(pred, true)
    for m in range(M):
        ref = [
            mir_eval.key.weighted_score(KEY_LABELS[t], KEY_LABELS[p])
            for t, p in zip(true.tolist(), pred[m].tolist())
        ]
        assert score[m].item() == pytest.approx(np.mean(ref), abs=1e-6)
        assert acc[m].item() == pytest.approx(float((pred[m] == true).float().mean()))
    assert score[0].item() == 1.0


def test_bf16_scores_are_cast_to_float32_first() -> None:
    scores, targets = _tagging_case(3)
    scores = scores + 0.01 * torch.randn(scores.shape, generator=torch.Generator().manual_seed(3))
    bf16 = scores.to(torch.bfloat16)
    cast = bf16.float().numpy()
    y = targets.numpy()
    auc, _ = roc_auc_macro(bf16, targets)
    ap, _ = average_precision_macro(bf16, targets)
    micro, _ = f1_at_threshold(bf16, targets, threshold=0.5)
    assert auc.dtype == ap.dtype == micro.dtype == torch.float32
    for m in range(M):
        ref_auc = np.mean([roc_auc_score(y[:, t], cast[m, :, t]) for t in range(2, L)])
        ref_ap = np.mean([average_precision_score(y[:, t], cast[m, :, t]) for t in range(1, L)])
        pred = (cast[m] >= 0.5).astype(int)
        ref_f1 = f1_score(y.astype(int), pred, average="micro", zero_division=0)
        assert auc[m].item() == pytest.approx(ref_auc, abs=1e-5)
        assert ap[m].item() == pytest.approx(ref_ap, abs=1e-5)
        assert micro[m].item() == pytest.approx(ref_f1, abs=1e-5)
    preds = torch.randn(M, N, 2, dtype=torch.bfloat16)
    tgt = torch.randn(N, 2)
    np.testing.assert_allclose(
        r2(preds, tgt)[0].numpy(),
        r2_score(tgt.numpy(), preds[0].float().numpy(), multioutput="raw_values"),
        atol=1e-5,
    )
