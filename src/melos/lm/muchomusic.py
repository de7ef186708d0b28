"""MuChoMusic (Weck et al., ISMIR 2024): its questions, its prompt and its answer scoring.

1,187 four-option questions on 644 clips from MusicCaps and the Song Describer Dataset, labelled
with music-knowledge and music-reasoning dimensions. Everything here follows the official release
(data: muchomusic.csv, Zenodo 10.5281/zenodo.12709974; code: github.com/mulab-mir/muchomusic) so
that numbers compare with the paper's:

- data columns (`muchomusic_eval/utils.py`): question, correct_answer, distractor_1_answer ..
  distractor_3_answer, dataset ("sdd" | "musiccaps"), dataset_identifier, genre, and
  music_knowledge / music_reasoning holding Python list literals (may be empty);
- prompt and option order (`prepare_prompts.py`, `configs/default.yaml`): see `prompt`; the
  official code shuffles options with unseeded `random.sample`, here the shuffle is seeded (see
  `shuffled`) and recorded like the official `answer_orders`;
- answer extraction and accuracy (`muchomusic_eval/scoring.py`): see `parse_answer` and `score`.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

LETTERS = ("A", "B", "C", "D")
ANSWER_PREFIX = "The correct answer is:"
OPTION_COLUMNS = ("correct_answer", "distractor_1_answer", "distractor_2_answer", "distractor_3_answer")
EXAMPLE = ("Question: What rhythm pattern do the digital drums primarily follow in this pop music piece? \n"
           " Options: (A) Four on the floor. (B) Off-beat syncopation. (C) Scat singing."
           " (D) E-guitar playing a simple melody. \n The correct answer is: A")
"""The official one-shot example (`configs/default.yaml`, the default evaluation config), as YAML parses it."""

RULES = ("official", "strict")


@dataclass(frozen=True)
class Question:
    """One multiple-choice question.

    `options[answer]` is the correct one. `order[k]` is the index in the file's option order
    (0 = correct_answer, 1..3 = distractor_1..3) of `options[k]`, like the official `answer_orders`.
    """

    id: str
    audio: str
    question: str
    options: tuple[str, ...]
    answer: int
    source: str = ""
    knowledge: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()
    genre: str = ""
    order: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "knowledge", tuple(self.knowledge))
        object.__setattr__(self, "reasoning", tuple(self.reasoning))
        object.__setattr__(self, "order", tuple(self.order) or tuple(range(len(self.options))))
        if not 0 <= self.answer < len(self.options):
            raise ValueError(f"question {self.id}: answer {self.answer} is not an index into "
                             f"{len(self.options)} options")
        if sorted(self.order) != list(range(len(self.options))):
            raise ValueError(f"question {self.id}: order {list(self.order)} is not a permutation of the options")

    @property
    def categories(self) -> list[str]:
        """The question's score groups: "knowledge" and "knowledge/<label>" per label, same for reasoning."""
        groups = []
        for dimension, labels in (("knowledge", self.knowledge), ("reasoning", self.reasoning)):
            if labels:
                groups.append(dimension)
                groups.extend(f"{dimension}/{label}" for label in dict.fromkeys(labels))
        return groups


def read_questions(path: str | Path, audio_root: str | Path | None = None) -> list[Question]:
    """Questions from the official CSV, or JSON in one of two layouts, in file order.

    JSON (an array, one object, or JSON Lines for .jsonl) holds either records with the CSV's
    columns (a `datasets` export) or the official prepared-prompt records of `prepare_prompts.py`
    (`prompt`, from which the question text is taken, `answers` already shuffled, `answer_orders`,
    `audio_path`, `knowledge`, `reasoning`; their `id` is the track's, so it is not used as an id).
    A question's id is its `question_id` when there is one, else its 0-based position.

    Audio: an `audio_path` column/key when present; else the official layout under the data
    folder (`muchomusic_eval/utils.py`): sdd -> `sdd/audio/NN/<track>.2min.mp3` (NN = track % 100,
    the MTG-Jamendo folders), musiccaps -> `musiccaps/audio/[<ytid>]-[<start>-<start + 10>].wav`,
    with ytid and start from the identifier `<ytid>_<start>.json` (MusicCaps clips are 10 s).
    Relative paths are resolved against `audio_root`, by default the questions file's folder.
    Raises ValueError naming the file (and the item) on missing columns or a malformed question.
    """
    path = Path(path)
    root = Path(audio_root) if audio_root is not None else path.parent
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _csv_records(path)
    elif suffix in (".json", ".jsonl"):
        records = _json_records(path)
    else:
        raise ValueError(f"{path}: expected a .csv, .json or .jsonl file of MuChoMusic questions")
    return [_question(path, root, index, record) for index, record in enumerate(records)]


def missing_audio(questions: Sequence[Question]) -> list[str]:
    """Audio paths of `questions` that are not files, each once, in question order."""
    return [audio for audio in dict.fromkeys(q.audio for q in questions) if not Path(audio).is_file()]


def shuffled(question: Question, seed: int) -> Question:
    """The question with its options in a seeded order: the same for the same (id, seed), on any machine.

    Starts from the file's option order, so re-shuffling a shuffled question gives the same
    result. Positions are sorted by SHA-256 of (seed, id, position), a uniform permutation
    independent of Python's and NumPy's random streams. `answer` and `order` follow the options.
    """
    source = [""] * len(question.options)
    for position, index in enumerate(question.order):
        source[index] = question.options[position]
    order = sorted(range(len(source)),
                   key=lambda k: hashlib.sha256(f"{seed}\x00{question.id}\x00{k}".encode()).digest())
    correct = question.order[question.answer]
    return replace(question, options=tuple(source[k] for k in order), answer=order.index(correct), order=tuple(order))


def prompt(question: Question, examples: Sequence[str] = (EXAMPLE,)) -> str:
    """The text prompt exactly as the official `get_prompts` builds it (audio goes separately).

    As a Python expression, every space significant (note the space after each option and at the end):

        " ".join(examples) + "\\n Question: " + question + "\\n Options: "
        + "".join(f"({letter}) {option} " for letter, option in zip("ABCD", options))
        + "\\n The correct answer is: "

    With no examples the prompt starts at "Question: ". The default, one in-context example
    `EXAMPLE`, is the official default config's.
    """
    text = " ".join(examples) + "\n Question: " if examples else "Question: "
    text += question.question + "\n Options: "
    text += "".join(f"({letter}) {option} " for letter, option in zip(LETTERS, question.options))
    return text + "\n The correct answer is: "


def parse_answer(output: str | None, options: Sequence[str], rule: str = "official") -> int | None:
    """Index of the option a model output chooses, or None when unanswered or ambiguous.

    Both rules first keep only the text after the last "The correct answer is:" (outputs that
    echo the prompt), then look for answer letters; with exactly one distinct letter that is the
    answer, otherwise (none, or several) they fall back to option text.

    official (reproduces `extract_responses` in the official scoring.py, and so the paper's numbers):
      letters are the characters A-D found anywhere in the output, case-sensitive: "(B)", "B",
      "The answer is C." give B, B, C; lowercase never counts ("a guitar plays", "answer: d" give
      no letter), but an uppercase letter inside a word does ("Acoustic guitar" reads as A,
      "Answer: B" as ambiguous A/B). Fallback: the first option, in option order, whose lowercased
      stripped text is a substring of the lowercased output.
    strict (a stricter reading for diagnostics, not comparable with published numbers):
      a letter (A-D, any case, not touching other letters or digits) counts only when bracketed
      "(b)" / "[B]", when it is the whole output apart from punctuation ("b."), after "answer",
      "option" or "choice" (optionally "is" / ":") if it is uppercase or ends the phrase
      ("answer: d", "Option B", but not "the answer is a guitar"), or when uppercase and leading
      the output before ".", ")" or ":" ("B. Electric guitar"). "A guitar plays" has no letter.
      Fallback: options whose words appear as a whole-word run in the output, after dropping any
      contained in another match ("electric guitar" beats "guitar"); exactly one, else None.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    text = (output or "").split(ANSWER_PREFIX)[-1].strip()
    if rule == "strict":
        letters = _letters(text, len(options))
    else:
        letters = {c for c in text if c in LETTERS[:len(options)]}
    if len(letters) == 1:
        return LETTERS.index(letters.pop())
    if rule == "official":
        lowered = text.lower()
        return next((i for i, option in enumerate(options) if option.lower().strip() in lowered), None)
    words = f" {_words(text)} "
    found = {i: w for i, w in enumerate(map(_words, options)) if w and f" {w} " in words}
    kept = [i for i, w in found.items() if not any(w != v and f" {w} " in f" {v} " for v in found.values())]
    return kept[0] if len(kept) == 1 else None


def score(questions: Sequence[Question], outputs: Sequence[str | None], rule: str = "official") -> dict:
    """Accuracy and instruction following, overall, per category and per source dataset.

    Returns n, accuracy (correct / n; an unanswered output counts as wrong), instruction_following
    (answered / n, where answered means `parse_answer` found an option: the paper's IFR),
    per_category {group: {n, accuracy, instruction_following}} over `Question.categories` (a
    question counts in every group it has, as in the official per-dimension scores), per_source
    likewise over `source`, and per question `predicted` (option index or None) and `correct`.
    """
    if len(questions) != len(outputs):
        raise ValueError(f"{len(questions)} questions but {len(outputs)} outputs")
    if not questions:
        raise ValueError("score needs at least one question")
    predicted = [parse_answer(output, q.options, rule) for q, output in zip(questions, outputs)]
    correct = [p == q.answer for p, q in zip(predicted, questions)]
    answered = [p is not None for p in predicted]

    def summary(items: list[int]) -> dict:
        return {"n": len(items), "accuracy": sum(correct[i] for i in items) / len(items),
                "instruction_following": sum(answered[i] for i in items) / len(items)}

    def grouped(keys: list[list[str]]) -> dict[str, dict]:
        members: dict[str, list[int]] = {}
        for i, names in enumerate(keys):
            for name in names:
                members.setdefault(name, []).append(i)
        return {name: summary(members[name]) for name in sorted(members)}

    return {**summary(list(range(len(questions)))), "rule": rule,
            "per_category": grouped([q.categories for q in questions]),
            "per_source": grouped([[q.source] if q.source else [] for q in questions]),
            "predicted": predicted, "correct": correct}


def accuracy_interval(correct: Sequence[bool], seed: int = 0, n_boot: int = 2000) -> tuple[float, float]:
    """95% percentile bootstrap interval of the accuracy, resampling questions with replacement."""
    values = np.asarray(correct, dtype=float)
    if values.size == 0:
        raise ValueError("accuracy_interval needs at least one question")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (n_boot, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


_CUED = re.compile(r"(?i:\b(?:answer|option|choice)\b(?:\s+is|\s+would\s+be)?)"
                   r"\s*[:\-]?\s*([A-Da-d])(?![A-Za-z0-9])(.?)")
_BRACKETED = re.compile(r"[(\[]\s*([A-Da-d])\s*[)\]]")
_ALONE = re.compile(r"[\W_]*([A-Da-d])[\W_]*")
_LEADING = re.compile(r"([A-D])\s*[.):]")


def _letters(text: str, n: int) -> set[str]:
    """Answer letters in `text` under the strict rule (see `parse_answer`)."""
    found = {m.group(1) for m in _BRACKETED.finditer(text)}
    found.update(m.group(1) for m in _CUED.finditer(text) if m.group(1).isupper() or m.group(2) in ".,;:!?)]")
    for pattern in (_ALONE, _LEADING):
        match = pattern.fullmatch(text) if pattern is _ALONE else pattern.match(text)
        if match:
            found.add(match.group(1))
    return {letter.upper() for letter in found} & set(LETTERS[:n])


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _csv_records(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        required = ["question", *OPTION_COLUMNS]
        if "audio_path" not in columns:
            required += ["dataset", "dataset_identifier"]
        missing = [c for c in required if c not in columns]
        if missing:
            raise ValueError(f"{path}: missing columns: {', '.join(missing)}")
        return list(reader)


def _json_records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".jsonl":
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from None
    data = [data] if isinstance(data, dict) else data
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{path}: expected JSON objects (an array of them, or one per line)")
    return data


def _blank(value) -> bool:
    """None, NaN or a blank string: an empty cell however the file was read."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and value != value)


def _question(path: Path, root: Path, index: int, record: dict) -> Question:
    qid = str(index if _blank(record.get("question_id")) else record["question_id"])
    where = f"{path}: item {qid}"
    prepared = "answers" in record
    if prepared and "question" not in record and isinstance(record.get("prompt"), str):
        record = {**record, "question": _question_in(record["prompt"])}
    required = ["question", "answers"] if prepared else ["question", *OPTION_COLUMNS]
    if "audio_path" not in record:
        required += ["dataset", "dataset_identifier"]
    missing = [key for key in required if key not in record]
    if missing:
        raise ValueError(f"{where}: missing keys: {', '.join(missing)}")
    if prepared:
        options = [str(a) for a in record["answers"] if not _blank(a)]
        order = record.get("answer_orders") or list(range(len(options)))
    else:
        options = [str(record[c]) for c in OPTION_COLUMNS if not _blank(record[c])]
        order = list(range(len(options)))
    if len(options) != 4:
        raise ValueError(f"{where}: {len(options)} options, MuChoMusic questions have 4")
    if sorted(order) != [0, 1, 2, 3]:
        raise ValueError(f"{where}: answer_orders {order} is not a permutation of 0..3")
    source = "" if _blank(record.get("dataset")) else str(record["dataset"])
    audio = record.get("audio_path")
    audio = Path(str(audio) if not _blank(audio) else _official_audio(where, source, record["dataset_identifier"]))
    return Question(id=qid, audio=str(audio if audio.is_absolute() else root / audio),
                    question=str(record["question"]),
                    options=tuple(options), answer=list(order).index(0), source=source,
                    knowledge=_labels(where, record.get("music_knowledge", record.get("knowledge"))),
                    reasoning=_labels(where, record.get("music_reasoning", record.get("reasoning"))),
                    genre="" if _blank(record.get("genre")) else str(record["genre"]), order=tuple(order))


def _question_in(text: str) -> str:
    """The question inside an official prompt: after its last "Question: ", before "\\n Options: "."""
    head = text[:text.rfind("Options: ")] if "Options: " in text else text
    head = head.rsplit("Question: ", 1)[-1]
    return head[:-2] if head.endswith("\n ") else head.rstrip(" ")


def _official_audio(where: str, source: str, identifier) -> str:
    name = str(identifier).strip().removesuffix(".json")
    try:
        if source == "sdd":
            track = int(name)
            return f"sdd/audio/{track % 100:02d}/{track}.2min.mp3"
        if source == "musiccaps":
            ytid, _, start = name.rpartition("_")
            if ytid:
                return f"musiccaps/audio/[{ytid}]-[{int(start)}-{int(start) + 10}].wav"
    except ValueError:
        pass
    raise ValueError(f"{where}: cannot place the audio of {source or 'no'} dataset identifier {identifier!r}; "
                     "give an audio_path")


def _labels(where: str, value) -> tuple[str, ...]:
    if _blank(value):
        return ()
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"{where}: category labels {value!r} are not a list literal") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: category labels {value!r} are not a list of strings")
    return tuple(value)


__all__ = ["ANSWER_PREFIX", "EXAMPLE", "LETTERS", "OPTION_COLUMNS", "Question", "RULES", "accuracy_interval",
           "missing_audio", "parse_answer", "prompt", "read_questions", "score", "shuffled"]
