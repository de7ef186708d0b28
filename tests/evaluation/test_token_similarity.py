import numpy as np
import pytest
import torch
from scipy.spatial.distance import cosine, jensenshannon

from melos.evaluation.token_similarity import corpus_similarity, js_divergence, token_histogram


def test_js_divergence_matches_scipy():
    rng = np.random.default_rng(0)
    p, q = rng.random(7), rng.random(7)
    p[2] = 0.0  # zero mass is allowed
    expected = jensenshannon(p, q, base=2) ** 2  # scipy gives the distance, the divergence's square root
    assert js_divergence(torch.tensor(p), torch.tensor(q)).item() == pytest.approx(expected, rel=1e-9)
    assert js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.0)
    assert js_divergence(torch.tensor(p), torch.tensor(3 * p)).item() == pytest.approx(0.0, abs=1e-12)


def test_histogram_counts_tokens_per_codebook():
    tokens = torch.tensor([[[0, 1, 1], [2, 2, 2]], [[3, 3, 0], [0, 1, 2]]])  # [B=2, K=2, T=3]
    counts = token_histogram(lambda audio: tokens, [torch.zeros(2, 10)], codebook_size=4)
    assert counts.tolist() == [[2, 2, 0, 2], [1, 1, 4, 0]]


def test_corpus_similarity_averages_codebooks():
    a = torch.tensor([[1.0, 0.0, 1.0], [4.0, 1.0, 0.0]])
    b = torch.tensor([[0.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    result = corpus_similarity({"a": a, "b": b})
    expected_jsd = np.mean([jensenshannon(a[k].numpy(), b[k].numpy(), base=2) ** 2 for k in range(2)])
    expected_cos = np.mean([cosine(a[k].numpy(), b[k].numpy()) for k in range(2)])
    assert result["corpora"] == ["a", "b"]
    assert result["jsd"][0][1] == pytest.approx(expected_jsd) and result["jsd"][1][1] == pytest.approx(0.0)
    assert result["cosine_distance"][1][0] == pytest.approx(expected_cos)
