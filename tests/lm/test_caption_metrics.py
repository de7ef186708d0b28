"""Caption metrics against hand computations."""

import builtins
import math

import pytest
import sacrebleu

from melos.lm.caption_metrics import bertscore, bleu, caption_scores, rouge_l


def _lcs(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_identical_captions_score_perfectly():
    captions = ["a mellow piano ballad with soft strings", "fast punk drums and distorted guitars"]
    result = caption_scores(captions, captions)
    assert result["bleu"] == pytest.approx(100.0)
    assert result["rouge_l"] == pytest.approx(1.0)
    assert "tok:13a" in result["bleu_signature"] and "nrefs:1" in result["bleu_signature"]
    assert set(result["definitions"]) == {"bleu", "rouge_l"}


def test_rouge_l_is_the_lcs_f_measure():
    hyp, ref = "a guitar and a slow melody", "a slow guitar melody with drums"
    lcs = _lcs(hyp.split(), ref.split())              # "a guitar melody" -> 3
    p, r = lcs / len(hyp.split()), lcs / len(ref.split())
    assert lcs == 3
    assert rouge_l([hyp], [ref]) == pytest.approx(2 * p * r / (p + r))
    assert rouge_l([hyp, hyp], [ref, hyp]) == pytest.approx((2 * p * r / (p + r) + 1) / 2)
    assert rouge_l([hyp], [[ref, hyp]]) == pytest.approx(1.0)   # best reference


def test_bleu_brevity_penalty_by_hand():
    ref = "the band plays a slow blues in a minor key"         # 10 tokens
    hyp = "the band plays a slow blues"                         # its first 6: every precision is 1
    expected = 100 * math.exp(1 - 10 / 6)
    assert bleu([hyp], [ref]).score == pytest.approx(expected)
    assert sacrebleu.sentence_bleu(hyp, [ref]).score == pytest.approx(expected)


def test_bleu_is_corpus_level():
    hyps = ["w1 w2 w3 w4 w5", "x1 x2 x3 x4 y5"]
    refs = ["w1 w2 w3 w4 w5", "y1 y2 y3 y4 y5"]
    # matches / totals over both: 1-grams 6/10, 2-grams 4/8, 3-grams 3/6, 4-grams 2/4; no brevity penalty
    expected = 100 * (0.6 * 0.5 * 0.5 * 0.5) ** 0.25
    assert bleu(hyps, refs).score == pytest.approx(expected)
    mean_of_sentences = sum(sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hyps, refs)) / 2
    assert abs(mean_of_sentences - expected) > 1


def test_bleu_with_several_references():
    hyps = ["a soft piano piece", "loud rock drums here"]
    result = bleu(hyps, [[hyps[0], "piano"], [hyps[1]]])
    assert result.score == pytest.approx(100.0) and "nrefs:var" in result.signature


def test_mismatched_or_empty_inputs_raise():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        bleu(["a b c d", "e f g h"], ["a b c d"])
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        rouge_l(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least one caption"):
        caption_scores([], [])
    with pytest.raises(ValueError, match="caption 0"):
        rouge_l(["a"], [[]])


def test_bertscore_needs_a_local_model(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="model on disk"):
        bertscore(["a"], ["a"])
    with pytest.raises(RuntimeError, match="model on disk"):
        bertscore(["a"], ["a"], model_dir=tmp_path / "absent", num_layers=9)
    with pytest.raises(RuntimeError, match="num_layers"):
        bertscore(["a"], ["a"], model_dir=tmp_path)
    real_import = builtins.__import__

    def no_bert_score(name, *args, **kwargs):
        if name == "bert_score":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bert_score)
    with pytest.raises(RuntimeError, match="bert_score package"):
        bertscore(["a"], ["a"], model_dir=tmp_path, num_layers=9)
