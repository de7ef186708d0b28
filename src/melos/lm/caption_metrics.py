"""Caption metrics with their exact definitions: corpus BLEU-4 (sacrebleu), ROUGE-L (rouge_score), BERTScore,
and the audio-captioning papers' COCO set (pycocoevalcap): BLEU-1..4, METEOR, ROUGE-L, CIDEr-D.

Caption papers compute "BLEU" and "ROUGE" with different tokenisers, casing and smoothing, and the
numbers do not transfer between implementations (pycocoevalcap's BLEU, for one, differs). Each
function here names one reference implementation and its settings, so a number comes with its
definition. References per hypothesis: one string, or a list of strings (several captions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

References = Sequence[str | Sequence[str]]

DEFINITIONS = {
    "bleu": "sacrebleu corpus BLEU, 0-100: n-grams 1-4 over 13a tokens, case-sensitive, n-gram counts and lengths "
            "summed over the corpus, brevity penalty exp(1 - r/c) with r the closest reference length per caption, "
            "'exp' smoothing (only when a corpus n-gram count is 0), no effective order",
    "rouge_l": "rouge_score ROUGE-L F-measure (beta 1) of the LCS over lowercased [a-z0-9] tokens, Porter-stemmed "
               "(use_stemmer=True), no sentence splitting; max over references per caption, mean over captions, 0-1",
    "coco": "pycocoevalcap (the COCO caption evaluation the captioning papers report): BLEU-1..4 (corpus, "
            "'closest' reference length), METEOR 1.5 (java, -l en -norm), ROUGE-L (LCS F with beta 1.2, best "
            "precision and recall over references), CIDEr-D (n 1-4, sigma 6, clipped, idf over the references of "
            "this corpus, x10); captions lowercased, punctuation removed, split on spaces (in place of the "
            "Java PTB tokenizer), 0-1 except CIDEr-D",
    "bertscore": "bert_score F1 with a local model directory and a chosen layer, mean over captions (max over "
                 "references), no baseline rescaling, no IDF",
}


class MissingMetric(RuntimeError):
    """A metric's package, program (Java) or model folder is not there."""


@dataclass(frozen=True)
class Bleu:
    """A corpus BLEU score (0-100) and sacrebleu's signature of the settings that produced it."""

    score: float
    signature: str


def bleu(hypotheses: Sequence[str], references: References) -> Bleu:
    """Corpus BLEU-4 of `hypotheses` against `references` with sacrebleu's defaults.

    Settings (`sacrebleu.metrics.BLEU()`): tokenize="13a", lowercase=False, smooth_method="exp",
    max_ngram_order=4, effective_order=False. Matched and total n-gram counts and the lengths are
    summed over all captions before the precisions are taken (corpus BLEU, not a mean of sentence
    BLEUs); BP = exp(1 - r/c) when the total hypothesis length c is below r, the sum of each
    caption's closest reference length. A caption with fewer than 4 tokens has no 4-grams, so a
    corpus of only such captions scores 0. Captions with fewer references are padded (sacrebleu's
    variable-reference mode, `nrefs:var` in the signature).
    """
    from sacrebleu.metrics import BLEU

    refs = _references(hypotheses, references)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(max(map(len, refs)))]
    metric = BLEU()
    result = metric.corpus_score(list(hypotheses), streams)
    return Bleu(float(result.score), str(metric.get_signature()))


def rouge_l(hypotheses: Sequence[str], references: References) -> float:
    """Mean ROUGE-L F-measure (0-1): `rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)`.

    Per caption: P = LCS / hypothesis tokens, R = LCS / reference tokens, F = 2PR / (P + R), tokens
    being the lowercased [a-z0-9]+ runs, Porter-stemmed when longer than 3 characters; with several
    references the best F (`score_multi`). The corpus value is the unweighted mean over captions.
    """
    from rouge_score import rouge_scorer

    refs = _references(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score_multi(list(r), h)["rougeL"].fmeasure for h, r in zip(hypotheses, refs)]
    return float(sum(scores) / len(scores))


def bertscore(hypotheses: Sequence[str], references: References, model_dir: str | Path | None = None,
              num_layers: int | None = None) -> float:
    """Mean BERTScore F1 with a model already on disk; it never downloads.

    Needs the `bert_score` package, `model_dir` (a Hugging Face model folder) and `num_layers`
    (the layer whose embeddings are matched; published BERTScores fix it per model). No baseline
    rescaling and no IDF weighting. Raises RuntimeError when any of these is missing.
    """
    if model_dir is None or not Path(model_dir).is_dir():
        raise MissingMetric(f"BERTScore needs its model on disk: pass model_dir, a local model folder "
                           f"(got {model_dir!r}); melos never downloads one")
    if num_layers is None:
        raise MissingMetric("BERTScore needs num_layers, the model layer to compare (it differs per model)")
    try:
        import bert_score
    except ImportError:
        raise MissingMetric("BERTScore needs the bert_score package, which is not installed") from None
    refs = _references(hypotheses, references)
    _, _, f1 = bert_score.score(list(hypotheses), [list(r) for r in refs], model_type=str(model_dir),
                                num_layers=num_layers, idf=False, rescale_with_baseline=False)
    return float(f1.mean())


def coco_scores(hypotheses: Sequence[str], references: References, meteor: bool = True) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr-D with pycocoevalcap (definition: DEFINITIONS["coco"]).

    METEOR runs pycocoevalcap's meteor-1.5.jar and needs Java: MissingMetric (a RuntimeError) when `java` is not on
    the PATH (pass meteor=False to score without it)."""
    check_coco(meteor)
    from pycocoevalcap.bleu.bleu import Bleu as CocoBleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    refs = _references(hypotheses, references)
    res = {str(i): [coco_tokens(h)] for i, h in enumerate(hypotheses)}
    gts = {str(i): [coco_tokens(r) for r in rs] for i, rs in enumerate(refs)}
    bleus, _ = CocoBleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu_{n}": float(b) for n, b in enumerate(bleus, 1)}
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider_d"] = float(Cider().compute_score(gts, res)[0])
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        out["meteor"] = float(Meteor().compute_score(gts, res)[0])  # its __del__ ends the java process
    return out


def check_coco(meteor: bool = True) -> None:
    """Raise MissingMetric now, before captions are generated, if `coco_scores` could not run."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pycocoevalcap") is None:
        raise MissingMetric("the COCO caption metrics need the pycocoevalcap package (pip install pycocoevalcap)")
    if meteor and shutil.which("java") is None:
        raise MissingMetric("METEOR needs Java: pycocoevalcap runs meteor-1.5.jar with `java`, which is not on the "
                            "PATH; install a Java runtime or score without METEOR (--no-meteor)")


def coco_tokens(text: str) -> str:
    """Lowercased words without punctuation, joined by single spaces (what the COCO scorers read)."""
    import re

    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def caption_scores(hypotheses: Sequence[str], references: References, coco: bool = False,
                   meteor: bool = True) -> dict:
    """BLEU (with its signature) and ROUGE-L of the captions, with the one-line definitions of both;
    with `coco`, also the COCO set under "coco" (see `coco_scores`)."""
    result = bleu(hypotheses, references)
    out = {"n": len(hypotheses), "bleu": result.score, "bleu_signature": result.signature,
           "rouge_l": rouge_l(hypotheses, references),
           "definitions": {k: DEFINITIONS[k] for k in ("bleu", "rouge_l")}}
    if coco:
        out["coco"] = coco_scores(hypotheses, references, meteor)
        out["definitions"]["coco"] = DEFINITIONS["coco"]
    return out


def _references(hypotheses: Sequence[str], references: References) -> list[list[str]]:
    """Each caption's references as a non-empty list of strings; checks the two sides line up."""
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise ValueError("hypotheses and references must be sequences of captions, not one string")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("caption metrics need at least one caption")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    for i, (h, r) in enumerate(zip(hypotheses, refs)):
        if not isinstance(h, str) or not r or not all(isinstance(x, str) for x in r):
            raise ValueError(f"caption {i}: needs a hypothesis string and at least one reference string")
    return refs


__all__ = ["Bleu", "DEFINITIONS", "MissingMetric", "bertscore", "bleu", "caption_scores", "check_coco", "coco_scores",
           "coco_tokens", "rouge_l"]
