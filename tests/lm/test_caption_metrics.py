"""Caption metrics against hand computations."""

import builtins
import math

import numpy as np
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


COCO_HYPS = ["A slow oud piece.", "drums and bass, fast"]
COCO_REFS = [["a slow piece with oud", "an oud plays slowly"], ["fast drums and bass"]]


def test_coco_bleu_and_rouge_match_hand_computations():
    from melos.lm.caption_metrics import coco_scores

    got = coco_scores(COCO_HYPS, COCO_REFS, meteor=False)
    # Tokens: "a slow oud piece" (4) and "drums and bass fast" (4); closest reference lengths 4 and 4,
    # so no brevity penalty. Clipped matches, n = 1..4: (4+4)/8, (1+2)/6, (0+1)/4, 0/2.
    p = [8 / 8, 3 / 6, 1 / 4]
    for n in (1, 2, 3):
        assert got[f"bleu_{n}"] == pytest.approx(math.prod(p[:n]) ** (1 / n), rel=1e-6)
    assert got["bleu_4"] < 1e-3  # no 4-gram matches: pycocoevalcap's tiny floor, not exactly 0
    # ROUGE-L (beta 1.2): best precision and best recall over references, then F.
    def f(hyp, refs, beta=1.2):
        h = hyp.split()
        lcs = [_lcs(h, r.split()) for r in refs]
        prec, rec = max(x / len(h) for x in lcs), max(x / len(r.split()) for x, r in zip(lcs, refs))
        return (1 + beta ** 2) * prec * rec / (rec + beta ** 2 * prec) if prec and rec else 0.0

    expected = (f("a slow oud piece", COCO_REFS[0]) + f("drums and bass fast", COCO_REFS[1])) / 2
    assert got["rouge_l"] == pytest.approx(expected, rel=1e-6)


def test_coco_cider_d_is_ten_for_captions_equal_to_their_only_reference():
    from melos.lm.caption_metrics import coco_scores

    # Each n-gram occurs in one of the two clips' references (idf log 2), hypothesis = reference:
    # cosine 1 per n, no length penalty, mean over n = 1..4 times 10.
    captions = ["a slow oud piece in nine eight", "fast punk drums with distorted guitars"]
    assert coco_scores(captions, captions, meteor=False)["cider_d"] == pytest.approx(10.0, rel=1e-6)
    worse = coco_scores(["a slow oud piece", "fast punk drums"], captions, meteor=False)["cider_d"]
    assert 0 < worse < 10


def test_coco_meteor_needs_java(monkeypatch):
    import shutil

    from melos.lm.caption_metrics import coco_scores

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="METEOR needs Java"):
        coco_scores(COCO_HYPS, COCO_REFS)


def test_coco_meteor_matches_its_formula():
    import shutil

    from melos.lm.caption_metrics import coco_scores

    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    # 3 of the reference's 4 words match exactly, in one chunk: P = 1, R = 3/4,
    # Fmean = P R / (alpha P + (1 - alpha) R), penalty gamma (chunks / matches) ** beta, with
    # METEOR 1.5's English parameters alpha 0.85, beta 0.2, gamma 0.6 (all content words).
    fmean = 0.75 / (0.85 + 0.15 * 0.75)
    got = coco_scores(["Fast punk drums!"], ["fast punk drums guitars"])["meteor"]
    assert got == pytest.approx(fmean * (1 - 0.6 * (1 / 3) ** 0.2), abs=1e-4)


def _tiny_bert(folder):
    """A random 2-layer BERT with a WordPiece tokenizer trained here, saved as a local model folder."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.train_from_iterator(["a slow oud piece", "fast punk drums and bass", "an oud plays slowly"] * 5,
                             trainers.WordPieceTrainer(vocab_size=200,
                                                       special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tokenizer = BertTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64)).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def test_bertscore_is_greedy_cosine_matching_of_a_layers_embeddings(tmp_path):
    import torch

    model, tokenizer = _tiny_bert(tmp_path / "bert")
    hyps = ["a slow oud piece", "drums and bass"]
    refs = [["an oud plays slowly", "a slow piece"], "fast punk drums and bass"]

    def embed(text):  # layer-1 states of [CLS] text [SEP], unit length
        ids = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            states = model(**ids, output_hidden_states=True).hidden_states[1][0]
        return torch.nn.functional.normalize(states, dim=-1)

    def f1(hyp, ref):
        # Every token of the other side may be the best match ([CLS] and [SEP] included), but only
        # the text's own tokens are averaged (without IDF, bert_score weights [CLS] and [SEP] 0).
        sim = embed(hyp) @ embed(ref).T
        p, r = sim.max(dim=1).values[1:-1].mean(), sim.max(dim=0).values[1:-1].mean()
        return float(2 * p * r / (p + r))

    expected = np.mean([max(f1(h, r) for r in ([rs] if isinstance(rs, str) else rs)) for h, rs in zip(hyps, refs)])
    assert bertscore(hyps, refs, tmp_path / "bert", num_layers=1) == pytest.approx(expected, abs=1e-4)
