"""Scores of a trained model on multiple-choice questions, with and without its audio, as one
results dict and a few printable lines (`melos lm eval`, `melos lm demo`)."""

from __future__ import annotations

import logging
from pathlib import Path

from .caption_metrics import DEFINITIONS, MissingMetric, bertscore, caption_scores, check_coco
from .checkpoint import load_trained
from .evaluate import describe, evaluate, paired_drop
from .rows import check_audio, read_rows
from .model import MusicLM
from .muchomusic import Question, accuracy_interval, missing_audio, read_questions, shuffled
from .training import featurizer_of

log = logging.getLogger(__name__)


def load_model(folder: str | Path, lm_dir: str | Path | None = None):
    """A MusicLM and its tokenizer from a folder `melos lm train` (or `melos lm export`) wrote;
    `lm_dir`: the base LM's folder if it moved since training."""
    return load_trained(folder, lm_dir)


def evaluate_model(model_dir: str | Path, questions_file: str | Path, audio_root: str | None = None,
                   ablations: list[str] = ("none",), batch_size: int = 8, seed: int = 0,
                   feature_cache: str | None = "cache/lm-features", progress: bool = True,
                   max_new_tokens: int = 16, likelihood: bool = True, lm_dir: str | None = None) -> dict:
    """Read, shuffle (seeded) and answer the questions under each ablation; accuracies with 95%
    intervals, per category, and each ablation's paired accuracy drop, for generate-and-match
    and (if `likelihood`) option log-likelihood scoring."""
    questions = [shuffled(q, seed) for q in read_questions(questions_file, audio_root)]
    missing = missing_audio(questions)
    if missing:
        raise FileNotFoundError(f"{questions_file}: {len(missing)} questions' audio is missing, e.g. {missing[0]}")
    model, tokenizer = load_model(model_dir, lm_dir)
    return score_runs(model, tokenizer, questions, ablations, batch_size, seed, feature_cache, progress,
                      max_new_tokens, likelihood)


def caption_model(model_dir: str | Path, rows_file: str | Path, audio_root: str | None = None, batch_size: int = 8,
                  feature_cache: str | None = "cache/lm-features", progress: bool = True,
                  max_new_tokens: int = 64, lm_dir: str | None = None, coco: bool = False, meteor: bool = True,
                  bertscore_model: str | None = None, bertscore_layer: int | None = None) -> dict:
    """Caption each row's audio (its first turn's instruction) and score against its answer:
    BLEU and ROUGE-L with their definitions, with `coco` the COCO set (BLEU-1..4, METEOR unless
    not `meteor`, ROUGE-L, CIDEr-D), BERTScore F1 with a local `bertscore_model`, and the first
    captions beside their references."""
    rows = read_rows(rows_file, root=audio_root)
    missing = check_audio(rows)
    if missing:
        raise FileNotFoundError(f"{rows_file}: {len(missing)} rows have no audio file, e.g. {missing[0]}")
    if coco:
        check_coco(meteor)
    if bertscore_model is not None and not Path(bertscore_model).is_dir():  # fail before generating
        raise MissingMetric(f"{bertscore_model}: not a folder; BERTScore needs a local model folder")
    model, tokenizer = load_model(model_dir, lm_dir)
    outputs = describe(model, tokenizer, rows, featurizer_of(model, feature_cache), batch_size, max_new_tokens,
                       progress=progress)
    references = [r.turns[0].assistant for r in rows]
    scores = caption_scores(outputs, references, coco, meteor)
    if bertscore_model is not None:
        scores["bertscore"] = bertscore(outputs, references, bertscore_model, bertscore_layer)
        scores["definitions"]["bertscore"] = DEFINITIONS["bertscore"]
    scores["examples"] = [{"id": r.id, "caption": o, "reference": ref}
                          for r, o, ref in zip(rows[:10], outputs, references)]
    return scores


def score_runs(model: MusicLM, tokenizer, questions: list[Question], ablations: list[str], batch_size: int = 8,
               seed: int = 0, feature_cache: str | None = None, progress: bool = True, max_new_tokens: int = 16,
               likelihood: bool = True) -> dict:
    """The results dict of `evaluate_model` for questions already read: per ablation, the
    generate-and-match scores and, under "likelihood", the log-likelihood ones."""
    featurizer = featurizer_of(model, feature_cache)
    runs = {a: evaluate(model, tokenizer, questions, featurizer, a, batch_size, seed, progress, max_new_tokens,
                        likelihood) for a in ablations}
    results: dict = {"n_questions": len(questions), "chance": 1 / 4, "runs": {}}
    first = runs[ablations[0]]
    for name, run in runs.items():
        row = _scored(questions, run.scores, first.scores["correct"] if name != ablations[0] else None, seed)
        row["outputs"] = run.outputs[:20]
        if run.likelihood is not None:
            row["likelihood"] = _scored(questions, run.likelihood,
                                        first.likelihood["correct"] if name != ablations[0] else None, seed)
        results["runs"][name] = row
    return results


def _scored(questions: list[Question], s: dict, base: list[bool] | None, seed: int) -> dict:
    """Accuracy, its interval, the instruction-following rate, per category and (against `base`) the drop."""
    low, high = accuracy_interval(s["correct"], seed)
    row = {"accuracy": s["accuracy"], "interval": [low, high], "instruction_following": s["instruction_following"],
           "per_category": {}}
    for group, values in s["per_category"].items():
        members = [c for q, c in zip(questions, s["correct"]) if group in q.categories]
        row["per_category"][group] = {**values, "interval": list(accuracy_interval(members, seed))}
    if base is not None:
        drop, lo, hi = paired_drop(base, s["correct"], seed)
        row["drop"] = {"accuracy": drop, "interval": [lo, hi]}
    return row


def summary_lines(results: dict) -> list[str]:
    """One line per run and per category of the first run."""
    lines = [f"{results['n_questions']} questions, chance {results['chance']:.2f}"]
    for name, run in results["runs"].items():
        for mode, row in (("generate", run), ("likelihood", run.get("likelihood"))):
            if row is None:
                continue
            lo, hi = row["interval"]
            line = (f"  audio {name:8s} {mode:10s} accuracy {row['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]  "
                    f"instruction following {row['instruction_following']:.3f}")
            if "drop" in row:
                d = row["drop"]
                line += f"  drop {d['accuracy']:+.3f} [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}]"
            lines.append(line)
    first = next(iter(results["runs"].values()))
    for group, values in first["per_category"].items():
        lo, hi = values["interval"]
        lines.append(f"    {group:28s} n={values['n']:4d} accuracy {values['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]")
    return lines
