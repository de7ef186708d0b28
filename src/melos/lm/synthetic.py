"""Captions and multiple-choice questions from the synthetic corpus' labels: the laptop demonstration's
training and evaluation data, exact by construction.

From a clip's labels (`melos.data.synth`: tradition, mode, metre, instruments, tempo_bpm):
  caption(labels, rng)                    one of 8 templates, instruments in random order
  questions(labels, rng, all_values)      4-option questions of QTYPES, distractors from the corpus
  corpus_rows(corpus_dir, seed)           caption rows, question rows and evaluation questions for a
                                          corpus written by `write_corpus` (its manifest.jsonl)

Tempo words: `tempo_bpm` counts pulses (quarters in western, matras in raga, eighths in the x/8
metres of makam and greek), so the beat rate halves eighth pulses; then slow < 110 bpm <= moderate
< 135 <= brisk < 165 <= very fast. Four words, not three, so a tempo question has four options;
the thresholds spread the corpus over all four.

Question rows (training), one turn each:
  user       "<audio>\n{question}\nOptions: (A) {a} (B) {b} (C) {c} (D) {d}\nAnswer with the letter."
  assistant  "({letter}) {option text}"
Evaluation questions are dicts {id, audio, question, options, answer (the correct option's index,
0-3), categories: [qtype], source: "synthetic"}, the same questions as the question rows.
Everything is deterministic from the seed: each clip draws from its own stream (seed, clip path),
so a clip's text does not depend on which other clips or splits are read.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..data.synth import TRADITIONS
from .rows import AUDIO, Row, Turn, caption_row

QTYPES = ("tradition", "mode", "metre", "tempo", "instrument")
LETTERS = "ABCD"
TEMPO_WORDS = ("slow", "moderate", "brisk", "very fast")  # none inside another: option-text scoring is unambiguous
TEMPO_LIMITS = (110.0, 135.0, 165.0)  # beat bpm where moderate, brisk and very fast begin
TRADITION_NAMES = {"western": "Western tonal", "makam": "Turkish makam", "raga": "Hindustani raga",
                   "greek": "Greek folk"}

TEMPLATES = (
    "A {tempo} {trad} piece {mode_in}, in {metre}, played on {inst}.",
    "You can hear {inst} playing {mode_in} over a {tempo} {metre}. The style is {trad} music.",
    "{trad} music at a {tempo} tempo in {metre}, {mode_in}, performed on {inst}.",
    "This {tempo} piece in {metre} features {inst}. It is {trad} music {mode_in}.",
    "An ensemble of {inst} plays a {tempo} {trad} tune {mode_in}, in {metre}.",
    "{mode}, {metre}, {tempo} tempo: a {trad} recording with {inst}.",
    "A {trad} performance {mode_in} with {inst}; the rhythm is a {tempo} {metre}.",
    None,  # a list of fields in random order: see `caption`
)

PHRASINGS = {
    "tradition": ("Which musical tradition does this music come from?", "What style of music is this?",
                  "This recording belongs to which tradition?"),
    "mode": ("Which mode is the melody in?", "What is the mode or scale of this piece?",
             "The melody of this recording uses which mode?"),
    "metre": ("What is the metre of this music?", "Which rhythmic cycle does this piece follow?",
              "In which metre is this recording?"),
    "tempo": ("How would you describe the tempo?", "How fast is this music?", "What is the pace of this piece?"),
    "instrument": ("Which instrument can be heard?", "Which of these instruments plays in this recording?",
                   "Which instrument is part of this ensemble?"),
}


def beat_bpm(labels: dict) -> float:
    """Beats a minute: tempo_bpm, halved where the pulse is an eighth (metres x/8)."""
    return labels["tempo_bpm"] / (2 if labels["metre"].split()[0].endswith("/8") else 1)


def tempo_word(labels: dict) -> str:
    """slow, moderate, brisk or very fast by the beat rate (limits in TEMPO_LIMITS)."""
    return TEMPO_WORDS[bisect.bisect_right(TEMPO_LIMITS, beat_bpm(labels))]


def tradition_name(tradition: str) -> str:
    return TRADITION_NAMES.get(tradition, tradition)


def mode_name(mode: str) -> str:
    """"western/major" -> "major key", "makam/hicaz" -> "makam hicaz", "raga/yaman" -> "raga yaman",
    "greek/hijaz" -> "hijaz dromos"."""
    family, _, name = mode.partition("/")
    return {"western": f"{name} key", "makam": f"makam {name}", "raga": f"raga {name}",
            "greek": f"{name} dromos"}.get(family, name or family)


def metre_name(metre: str) -> str:
    """"tala/rupak" -> "rupak tala"; other metres ("4/4", "9/8 (2+2+2+3)") as they are."""
    return f"{metre.partition('/')[2]} tala" if metre.startswith("tala/") else metre


def _mode_in(mode: str) -> str:
    family = mode.partition("/")[0]
    return "in " + {"western": "a ", "greek": "the "}.get(family, "") + mode_name(mode)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.integers(len(items)))]


def caption(labels: dict, rng: np.random.Generator) -> str:
    """A one- or two-sentence caption naming the tradition, mode, metre, tempo word and instruments,
    from a random template with the instruments in random order."""
    instruments = [labels["instruments"][i] for i in rng.permutation(len(labels["instruments"]))]
    metre = metre_name(labels["metre"])
    parts = {"tempo": tempo_word(labels), "trad": tradition_name(labels["tradition"]), "mode": mode_name(labels["mode"]),
             "mode_in": _mode_in(labels["mode"]), "inst": _join(instruments),
             "metre": metre if metre.endswith(" tala") else f"{metre} metre"}
    template = _pick(rng, TEMPLATES)
    if template is None:
        fields = [("Tradition", parts["trad"]), ("Mode", parts["mode"]), ("Metre", metre),
                  ("Tempo", parts["tempo"]), ("Instruments", ", ".join(instruments))]
        text = " ".join(f"{name}: {value}." for name, value in (fields[i] for i in rng.permutation(len(fields))))
    else:
        text = template.format(**parts)
    return text[0].upper() + text[1:]


def clip_values(labels: dict) -> dict[str, list[str]]:
    """The values a question may ask about, per question type (instruments: all of them)."""
    return {"tradition": [labels["tradition"]], "mode": [labels["mode"]], "metre": [labels["metre"]],
            "tempo": [tempo_word(labels)], "instrument": list(labels["instruments"])}


def corpus_values(all_labels: Iterable[dict]) -> dict[str, list[str]]:
    """Every value seen per question type over a corpus, sorted: the distractor pools."""
    seen: dict[str, set[str]] = {qtype: set() for qtype in QTYPES}
    for labels in all_labels:
        for qtype, values in clip_values(labels).items():
            seen[qtype].update(values)
    return {qtype: sorted(values) for qtype, values in seen.items()}


DISPLAY = {"tradition": tradition_name, "mode": mode_name, "metre": metre_name, "tempo": str, "instrument": str}
FALLBACK = {"tradition": TRADITIONS, "tempo": TEMPO_WORDS}  # pools known whatever the corpus holds


def _distractors(qtype: str, answer: str, exclude: set[str], pool: list[str], rng: np.random.Generator) -> list[str]:
    """Three values from `pool` not in `exclude`; for modes, those of the answer's tradition first, so
    the question asks for the mode rather than the tradition. No option's displayed text contains
    another's ("raga bhairav" and "raga bhairavi" are never options together), so MuChoMusic's
    option-text fallback cannot pick the wrong one."""
    candidates = [pool[i] for i in rng.permutation(len(pool)) if pool[i] not in exclude]
    if qtype == "mode":
        family = answer.partition("/")[0]
        candidates.sort(key=lambda v: v.partition("/")[0] != family)
    chosen: list[str] = []
    shown = [DISPLAY[qtype](answer).lower()]
    for value in candidates:
        text = DISPLAY[qtype](value).lower()
        if len(chosen) < 3 and not any(text in other or other in text for other in shown):
            chosen.append(value)
            shown.append(text)
    return chosen


def questions(labels: dict, rng: np.random.Generator, all_values: dict[str, list[str]],
              types: Collection[str] = QTYPES, every_instrument: bool = False) -> list[tuple[str, list[str], int, str]]:
    """(question, 4 options, answer index, qtype) for each type in `types`, the answer at a uniformly
    random position. Distractors come from `all_values` (type -> values seen in the corpus, see
    `corpus_values`) and are never true of the clip: for `instrument` the answer is one instrument
    of the clip and the distractors are instruments it lacks. A type without three distractors is
    skipped.

    `every_instrument` asks the instrument question once per instrument of the clip (for training):
    the same audio then has several right answers, one per option set, so only reading the options
    tells which is meant."""
    values = clip_values(labels)
    out = []
    for qtype in QTYPES:
        if qtype not in types:
            continue
        answers = list(values[qtype]) if qtype == "instrument" and every_instrument else [_pick(rng, values[qtype])]
        pool = sorted(set(all_values.get(qtype, ())) | set(FALLBACK.get(qtype, ())))
        for answer in answers:
            wrong = _distractors(qtype, answer, set(values[qtype]), pool, rng)
            if len(wrong) < 3:
                continue
            index = int(rng.integers(4))
            options = [DISPLAY[qtype](v) for v in wrong[:index] + [answer] + wrong[index:]]
            out.append((_pick(rng, PHRASINGS[qtype]), options, index, qtype))
    return out


def format_question(question: str, options: list[str]) -> str:
    """The user text of a question row: the audio, the question, lettered options, the instruction."""
    lettered = " ".join(f"({letter}) {option}" for letter, option in zip(LETTERS, options))
    return f"{AUDIO}\n{question}\nOptions: {lettered}\nAnswer with the letter."


def format_answer(options: list[str], answer: int) -> str:
    """The assistant text of a question row: "(B) option text"."""
    return f"({LETTERS[answer]}) {options[answer]}"


class CorpusRows(NamedTuple):
    captions: list[Row]
    qa: list[Row]
    mcq: list[dict]


def _manifest(corpus_dir: Path) -> list[dict]:
    path = corpus_dir / "manifest.jsonl"
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            entry = json.loads(line)
            missing = [key for key in ("path", "split", "duration", "meta") if key not in entry]
            if missing:
                raise ValueError(f"{path}:{number}: missing {missing}")
            entries.append(entry)
    return entries


def corpus_rows(corpus_dir: str | Path, seed: int = 0, splits: Collection[str] | None = None,
                captions_per_clip: int = 1, types: Collection[str] = QTYPES,
                every_instrument: bool = False) -> CorpusRows:
    """Rows for the clips of a synthetic corpus (`corpus_dir/manifest.jsonl`) in `splits` (None: all):
    `captions_per_clip` caption rows a clip, one question row a question type, and the same
    questions as evaluation dicts (module doc). Distractors come from the whole corpus. Ids:
    "synth/<tradition>/<clip>/caption-<k>" and "synth/<tradition>/<clip>/<qtype>" (further questions
    of a type, see `questions`' every_instrument: "<qtype>-<n>")."""
    corpus_dir = Path(corpus_dir)
    entries = _manifest(corpus_dir)
    all_values = corpus_values(entry["meta"] for entry in entries)
    out = CorpusRows([], [], [])
    for entry in entries:
        if splits is not None and entry["split"] not in splits:
            continue
        labels, audio = entry["meta"], str(corpus_dir / entry["path"])
        base = "synth/" + Path(entry["path"]).with_suffix("").as_posix()
        stream = int.from_bytes(hashlib.sha256(entry["path"].encode()).digest()[:8], "little")
        rng = np.random.default_rng([seed, stream])
        common = {"duration": entry["duration"], "source": "synthetic", "split": entry["split"]}
        for k in range(captions_per_clip):
            out.captions.append(caption_row(f"{base}/caption-{k}", audio, caption(labels, rng), **common))
        asked: dict[str, int] = {}
        for question, options, answer, qtype in questions(labels, rng, all_values, types, every_instrument):
            asked[qtype] = asked.get(qtype, 0) + 1
            uid = f"{base}/{qtype}" + (f"-{asked[qtype] - 1}" if asked[qtype] > 1 else "")
            out.qa.append(Row(uid, audio, [Turn(format_question(question, options), format_answer(options, answer))],
                              **common))
            out.mcq.append({"id": uid, "audio": audio, "question": question, "options": options, "answer": answer,
                            "categories": [qtype], "source": "synthetic"})
    return out
