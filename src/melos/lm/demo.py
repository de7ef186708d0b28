"""`melos lm demo`: the music-language model end to end on a laptop, and whether it listens.

    1 corpus     synthetic clips: a training corpus and a held-out one (other seed, other clips)
    2 text       captions and multiple-choice questions from each clip's labels (lm/synthetic.py);
                 training questions use MuChoMusic's prompt, answered with the option's text (see
                 `answer_text`), so the evaluation protocol is the benchmark's; for training the
                 instrument question is asked once per instrument of the clip (only the options
                 then tell which answer is meant); held-out questions go to questions.json
    3 toy LM     a byte-level BPE tokenizer and a Qwen3-style LM trained on the training texts
                 alone (no audio): it knows the format and the answer priors, not the music
    4 train      recipes/lm-toy.yaml: align (projector, captions) then instruct (projector + LoRA)
    5 evaluate   held-out questions with the audio, and with noise in its place: accuracy per
                 question type with 95% bootstrap intervals, the paired drop

Each step is skipped when its output exists, so an interrupted demo resumes.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data.synth import write_corpus
from ..utils.atomic import write_text
from .muchomusic import Question, prompt, shuffled
from .prompting import ASSISTANT, AUDIO_MARKER, USER
from .report import load_model, score_runs, summary_lines
from .rows import Row, Turn, write_rows
from .synthetic import corpus_rows
from .toy import ToyLMConfig, write_toy_lm
from .training import load_recipe, train

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "lm-toy.yaml"
TRAIN_CLIPS, EVAL_CLIPS, SECONDS = 60, 25, 5.0  # per tradition
TEXT_STEPS = 600  # the toy LM's text pre-training (lr TEXT_LR)
TEXT_LR = 5e-3


def as_question(mcq: dict, seed: int) -> Question:
    """An evaluation dict of lm/synthetic.py as a MuChoMusic question (its type as the knowledge
    label), options shuffled (seeded)."""
    return shuffled(Question(id=mcq["id"], audio=mcq["audio"], question=mcq["question"], options=tuple(mcq["options"]),
                             answer=mcq["answer"], source=mcq["source"], knowledge=tuple(mcq["categories"])), seed)


def answer_text(question: Question) -> str:
    """What the toy model learns to answer: the correct option's text, lowercased.

    MuChoMusic's scorer reads an answer letter first (uppercase A-D anywhere in the output) and
    falls back to an option's text; lowercase text never contains a letter it would misread, and
    no option of the synthetic questions contains another, so the fallback is exact. Answering
    with the text, rather than a letter that points at it, lets a small LM learn from its
    knowledge of the music without also learning to bind letters to options."""
    return question.options[question.answer].lower()


def question_row(question: Question) -> Row:
    """A training row: the audio, MuChoMusic's prompt, the answer (see `answer_text`)."""
    return Row(question.id, question.audio, [Turn(f"{AUDIO_MARKER}\n{prompt(question)}", answer_text(question))],
               source="synthetic")


def question_record(question: Question) -> dict:
    """A question in MuChoMusic's column layout (the correct answer first), for questions.json."""
    options = [question.options[question.answer]] + [o for i, o in enumerate(question.options) if i != question.answer]
    return {"question_id": question.id, "question": question.question, "correct_answer": options[0],
            **{f"distractor_{k}_answer": options[k] for k in (1, 2, 3)}, "audio_path": question.audio,
            "dataset": question.source, "music_knowledge": list(question.knowledge)}


def run_demo(out: str | Path, encoder: str, recipe: str | None = None, overrides: list[str] = (),
             progress: bool = True, seed: int = 0) -> Path:
    """Run (or resume) the demonstration into `out`; returns the path of its report.md."""
    out = Path(out)
    if not (Path(encoder).exists() or "/" not in encoder):
        raise FileNotFoundError(f"encoder {encoder}: not found; run `melos quickstart` first, or pass --encoder with "
                                "any source melos.load_encoder reads (e.g. mert-tiny)")
    corpus, held_out = out / "corpus", out / "eval-corpus"
    if not (corpus / "manifest.jsonl").is_file():
        write_corpus(corpus, TRAIN_CLIPS, SECONDS, seed, {"train": 1.0}, progress=progress)
    if not (held_out / "manifest.jsonl").is_file():
        write_corpus(held_out, EVAL_CLIPS, SECONDS, seed + 1, {"test": 1.0}, progress=progress)

    train_rows = corpus_rows(corpus, seed, captions_per_clip=2, every_instrument=True)
    questions = [as_question(m, seed) for m in train_rows.mcq]
    held = [as_question(m, seed) for m in corpus_rows(held_out, seed + 1).mcq]
    write_rows(train_rows.captions, out / "captions.jsonl")
    write_rows([question_row(q) for q in questions], out / "instructions.jsonl")
    write_text(out / "questions.json", json.dumps([question_record(q) for q in held], indent=1))

    lm_dir = out / "toy-lm"
    if not (lm_dir / "config.json").is_file():
        conversations = [[(r.turns[0].user.replace(f"{AUDIO_MARKER}\n", ""), r.turns[0].assistant)]
                         for r in train_rows.captions]
        conversations += [[(prompt(q), answer_text(q))] for q in questions]
        texts = [f"{USER}{user}{ASSISTANT}{answer}" for (user, answer), in conversations]
        write_toy_lm(lm_dir, texts, ToyLMConfig(), seed=seed, conversations=conversations, steps=TEXT_STEPS,
                     lr=TEXT_LR, progress=progress)

    settings = [f"encoder={encoder}", f"lm={lm_dir}", f"captions={out / 'captions.jsonl'}",
                f"instructions={out / 'instructions.jsonl'}", f"feature_cache={out / 'cache'}", *overrides]
    model_dir = train(load_recipe(recipe or RECIPE, settings), out / "run", progress=progress)

    model, tokenizer = load_model(model_dir)
    results = score_runs(model, tokenizer, held, ["none", "noise"], batch_size=16, seed=seed,
                         feature_cache=str(out / "cache"), progress=progress)
    results["encoder"], results["model"] = encoder, str(model_dir)
    write_text(out / "results.json", json.dumps(results, indent=2))
    lines = summary_lines(results)
    report = ["# melos lm demo", "", f"encoder: `{encoder}`; model: `{model_dir}`", "", "```", *lines, "```", ""]
    return write_text(out / "report.md", "\n".join(report))
