"""`melos lm eval`: multiple-choice accuracy MuChoMusic's way, and whether the model listens.

    questions -> MuChoMusic prompt after the audio -> greedy answer -> letter (or option text) -> score

    questions -> MuChoMusic prompt + each option as the answer -> mean log-probability of the
                 option's tokens -> the most likely option (log-likelihood scoring, always answers)

`--audio-ablation` asks the same questions with the audio replaced: `noise` (Gaussian noise at
the clip's RMS), `silence` (zeros of the clip's length) or `shuffle` (another clip's audio: a
fixed derangement of the distinct clips, so no question keeps its own clip even where several
questions share one, as MuChoMusic's do). The accuracy drop from the real audio is what listening is worth: a model
that does not drop answers from the text alone. Intervals are 95% bootstrap intervals over
questions; the drop's interval comes from resampling the same questions in both runs (paired).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..audio import load
from .audio_features import AudioFeaturizer, Clip
from .model import MusicLM
from .muchomusic import LETTERS, Question, prompt, score
from .prompting import AUDIO_MARKER, IGNORE, collate, encode_conversation
from .rows import Row

ABLATIONS = ("none", "noise", "silence", "shuffle")


@dataclass
class Answered:
    """Outputs of one run over the questions and their scores."""

    ablation: str
    outputs: list[str]
    scores: dict
    likelihood: dict | None = None  # the same score dict for log-likelihood ranking of the options


def clip_of(question: Question) -> Clip:
    return Clip(question.audio)


def features_for(questions: list[Question], featurizer: AudioFeaturizer, ablation: str, seed: int = 0,
                 progress: bool = False) -> list[torch.Tensor]:
    """Pooled features [L, N, H] of each question's audio, or of its replacement under `ablation`."""
    from tqdm.auto import tqdm

    if ablation not in ABLATIONS:
        raise ValueError(f"audio ablation must be one of {', '.join(ABLATIONS)}, got {ablation!r}")
    clips = [clip_of(q) for q in questions]
    if ablation == "shuffle":
        clips = shuffled_clips(clips, seed)
    out = []
    rng = np.random.default_rng(seed)
    rate = featurizer.encoder.sample_rate
    for clip in tqdm(clips, desc=f"audio ({ablation})", unit="clip", disable=not progress, dynamic_ncols=True):
        if ablation in ("none", "shuffle"):
            out.append(featurizer.clip_features(clip))
            continue
        audio = load(clip.path, rate, mono=True).reshape(-1).numpy()
        if ablation == "noise":
            rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
            audio = (rms * rng.standard_normal(len(audio))).astype(np.float32)
        else:
            audio = np.zeros_like(audio)
        out.append(featurizer.features(audio, rate, name=clip.path))
    return out


def shuffled_clips(clips: list[Clip], seed: int) -> list[Clip]:
    """Each item's clip replaced by another clip of the list (a derangement of the distinct clips)."""
    distinct = list(dict.fromkeys(clips))
    if len(distinct) < 2:
        raise ValueError("the shuffle ablation needs questions on at least two different clips")
    order = derangement(len(distinct), seed)
    other = {clip: distinct[k] for clip, k in zip(distinct, order)}
    return [other[clip] for clip in clips]


def derangement(n: int, seed: int) -> list[int]:
    """A permutation of range(n) with no fixed point (identity for n < 2)."""
    if n < 2:
        return list(range(n))
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return order.tolist()


def stop_ids(model: MusicLM, tokenizer) -> list[int]:
    """Token ids that end an answer: the tokenizer's eos and the LM's generation-config eos ids
    (instruct LMs stop at an end-of-turn token that need not be the tokenizer's eos)."""
    ids = [tokenizer.eos_token_id]
    config = getattr(model.lm, "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    ids += extra if isinstance(extra, list) else [extra]
    return [i for i in dict.fromkeys(ids) if i is not None]


def question_turn(question: Question, option: str | None = None) -> list[tuple[str, str | None]]:
    """The conversation of MuChoMusic's prompt after the audio, answered with `option` if given."""
    return [(f"{AUDIO_MARKER}\n{prompt(question)}", option)]


@torch.no_grad()
def answer(model: MusicLM, tokenizer, questions: list[Question], features: list[torch.Tensor],
           batch_size: int = 8, max_new_tokens: int = 16, progress: bool = False) -> list[str]:
    """Greedy answers, one per question, to MuChoMusic's prompt after the audio."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    outputs: list[str] = []
    starts = range(0, len(questions), batch_size)
    for start in tqdm(starts, desc="answer", unit="batch", disable=not progress, dynamic_ncols=True):
        chunk = list(zip(questions[start:start + batch_size], features[start:start + batch_size]))
        examples = [encode_conversation(tokenizer, question_turn(q), [f.shape[1]], model.config.audio_token_ids,
                                        chat_template=model.config.chat_template) for q, f in chunk]
        batch = collate(examples, tokenizer.pad_token_id, left=True)
        new = model.generate(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                             audio_features=[f for _, f in chunk], max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_ids(model, tokenizer))
        outputs.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return outputs


@torch.no_grad()
def option_log_probs(model: MusicLM, tokenizer, questions: list[Question], features: list[torch.Tensor],
                     batch_size: int = 8, progress: bool = False) -> list[list[float]]:
    """Per question, per option: the mean log-probability of the option's text tokens as the
    answer to the question's prompt (closing tokens not counted), `batch_size` sequences at a time."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    items = [(k, o, f, encode_conversation(tokenizer, question_turn(q, option), [f.shape[1]],
                                           model.config.audio_token_ids, chat_template=model.config.chat_template,
                                           learn_closing=False))
             for k, (q, f) in enumerate(zip(questions, features)) for o, option in enumerate(q.options)]
    out = [[0.0] * len(q.options) for q in questions]
    for start in tqdm(range(0, len(items), batch_size), desc="log-likelihood", unit="batch", disable=not progress,
                      dynamic_ncols=True):
        chunk = items[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate([item[3] for item in chunk], tokenizer.pad_token_id).items()}
        logits = model(batch["input_ids"], batch["attention_mask"], audio_features=[item[2] for item in chunk]).logits
        targets = batch["labels"][:, 1:]  # token t is predicted from position t - 1
        mask = targets != IGNORE
        picked = logits[:, :-1].float().log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
        means = (picked * mask).sum(1) / mask.sum(1).clamp(min=1)
        for (k, o, _, _), value in zip(chunk, means.tolist()):
            out[k][o] = value
    return out


def likelihood_score(questions: list[Question], log_probs: list[list[float]]) -> dict:
    """MuChoMusic's score dict for the most likely option of each question (always answered)."""
    letters = [LETTERS[int(np.argmax(values))] for values in log_probs]
    return score(questions, letters)


def evaluate(model: MusicLM, tokenizer, questions: list[Question], featurizer: AudioFeaturizer,
             ablation: str = "none", batch_size: int = 8, seed: int = 0, progress: bool = False,
             max_new_tokens: int = 16, likelihood: bool = True) -> Answered:
    """Answer and score `questions` with the audio as given or replaced (see ABLATIONS): by
    generation (`scores`) and, if `likelihood`, by option log-likelihood (`likelihood`), on the
    same audio."""
    features = features_for(questions, featurizer, ablation, seed, progress)
    outputs = answer(model, tokenizer, questions, features, batch_size, max_new_tokens, progress=progress)
    ranked = likelihood_score(questions, option_log_probs(model, tokenizer, questions, features, batch_size,
                                                          progress)) if likelihood else None
    return Answered(ablation, outputs, score(questions, outputs), ranked)


@torch.no_grad()
def describe(model: MusicLM, tokenizer, rows: list[Row], featurizer: AudioFeaturizer, batch_size: int = 8,
             max_new_tokens: int = 64, progress: bool = False) -> list[str]:
    """Greedy answers to each row's first user turn (its audio, its caption instruction)."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    outputs: list[str] = []
    for start in tqdm(range(0, len(rows), batch_size), desc="caption", unit="batch", disable=not progress,
                      dynamic_ncols=True):
        chunk = rows[start:start + batch_size]
        features = [featurizer.clip_features(Clip(r.audio, r.offset, r.duration)) for r in chunk]
        examples = []
        for row, f in zip(chunk, features):
            user = row.turns[0].user
            user = user if AUDIO_MARKER in user else f"{AUDIO_MARKER}\n{user}"
            examples.append(encode_conversation(tokenizer, [(user, None)], [f.shape[1]], model.config.audio_token_ids,
                                                chat_template=model.config.chat_template))
        batch = collate(examples, tokenizer.pad_token_id, left=True)
        new = model.generate(batch["input_ids"].to(device), batch["attention_mask"].to(device), audio_features=features,
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=stop_ids(model, tokenizer))
        outputs.extend(text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True))
    return outputs


def paired_drop(correct: list[bool], ablated: list[bool], seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
    """Accuracy with the audio minus accuracy with it replaced, and its 95% paired bootstrap interval."""
    a, b = np.asarray(correct, float), np.asarray(ablated, float)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError("paired_drop needs two equally long, non-empty lists")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), (n_boot, len(a)))
    drops = a[picks].mean(axis=1) - b[picks].mean(axis=1)
    return float(a.mean() - b.mean()), float(np.percentile(drops, 2.5)), float(np.percentile(drops, 97.5))


__all__ = ["ABLATIONS", "Answered", "answer", "derangement", "describe", "evaluate", "features_for",
           "likelihood_score", "option_log_probs", "paired_drop", "shuffled_clips"]
