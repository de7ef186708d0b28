"""Synthetic captions and questions: true to the labels, well-formed options, deterministic."""

import collections
import json

import numpy as np
import pytest

from melos.data.synth import corpus
from melos.lm.rows import AUDIO, read_rows, write_rows
from melos.lm.synthetic import (LETTERS, QTYPES, TEMPO_WORDS, caption, corpus_rows, corpus_values, format_answer,
                                format_question, metre_name, mode_name, questions, tempo_word, tradition_name)


@pytest.fixture
def corpus_dir(tmp_path, monkeypatch):
    """A corpus written by the real write_corpus (so the real manifest), with empty files for audio."""
    monkeypatch.setattr(corpus, "_run", lambda jobs, workers, progress: [job[0].touch() for job in jobs])
    corpus.write_corpus(tmp_path, 12, seconds=5.0, progress=False, workers=1)
    return tmp_path


def _labels(corpus_dir):
    return [json.loads(line)["meta"] for line in (corpus_dir / "manifest.jsonl").read_text().splitlines()]


def test_tempo_words():
    def labels(bpm, metre):
        return {"tempo_bpm": bpm, "metre": metre}
    assert [tempo_word(labels(b, "4/4")) for b in (80, 109.9, 110, 134, 135, 165, 200)] == \
        ["slow", "slow", "moderate", "moderate", "brisk", "very fast", "very fast"]
    assert tempo_word(labels(200, "9/8 (2+2+2+3)")) == "slow" and tempo_word(labels(200, "tala/rupak")) == "very fast"


def test_names():
    assert [mode_name(m) for m in ("western/major", "makam/hicaz", "raga/yaman", "greek/hijaz")] == \
        ["major key", "makam hicaz", "raga yaman", "hijaz dromos"]
    assert metre_name("tala/teental") == "teental tala" and metre_name("7/8 (3+2+2)") == "7/8 (3+2+2)"


def test_captions_mention_the_labels(corpus_dir):
    rng = np.random.default_rng(0)
    texts = set()
    for labels in _labels(corpus_dir) * 2:
        text = caption(labels, rng).lower()
        texts.add(text.split()[0])
        for part in (tradition_name(labels["tradition"]), mode_name(labels["mode"]), metre_name(labels["metre"]),
                     tempo_word(labels), *labels["instruments"]):
            assert part.lower() in text, (part, text)
    assert len(texts) >= 6  # several templates in use


def test_questions_are_true_and_well_formed(corpus_dir):
    all_labels = _labels(corpus_dir)
    values = corpus_values(all_labels)
    rng = np.random.default_rng(1)
    positions = collections.Counter()
    phrasings = collections.defaultdict(set)
    for labels in all_labels * 4:
        asked = questions(labels, rng, values)
        assert [q[3] for q in asked] == list(QTYPES)
        for question, options, answer, qtype in asked:
            assert len(options) == 4 == len(set(options)) and 0 <= answer < 4
            truth = {"tradition": [tradition_name(labels["tradition"])], "mode": [mode_name(labels["mode"])],
                     "metre": [metre_name(labels["metre"])], "tempo": [tempo_word(labels)],
                     "instrument": labels["instruments"]}[qtype]
            assert options[answer] in truth
            assert not set(options[:answer] + options[answer + 1:]) & set(truth)
            lowered = [o.lower() for o in options]  # MuChoMusic's option-text fallback must be exact
            assert not any(a in b for a in lowered for b in lowered if a != b), options
            positions[answer] += 1
            phrasings[qtype].add(question)
    assert all(len(p) >= 3 for p in phrasings.values())
    total = sum(positions.values())
    assert all(abs(positions[i] / total - 0.25) < 0.05 for i in range(4)), positions


def test_mode_distractors_prefer_the_same_tradition():
    values = {"mode": ["makam/hicaz", "makam/huseyni", "makam/rast", "makam/ussak", "raga/kafi", "western/major"]}
    labels = {"tradition": "makam", "mode": "makam/rast", "metre": "4/4", "tempo_bpm": 100, "instruments": ["ney"]}
    (_, options, _, _), = questions(labels, np.random.default_rng(0), values, types=["mode"])
    assert sorted(options) == ["makam hicaz", "makam huseyni", "makam rast", "makam ussak"]
    assert questions(labels, np.random.default_rng(0), {"metre": ["4/4", "3/4"]}, types=["metre"]) == []
    (_, options, _, _), = questions(labels, np.random.default_rng(0), {}, types=["tempo"])
    assert sorted(options) == sorted(TEMPO_WORDS)  # tempo and tradition pools need no corpus


def test_corpus_rows(corpus_dir):
    captions, qa, mcq = corpus_rows(corpus_dir, seed=3, captions_per_clip=2)
    n = 4 * 12
    assert len(captions) == 2 * n and len(qa) == len(mcq) == len(QTYPES) * n
    assert len({r.id for r in captions + qa}) == len(captions) + len(qa)
    assert captions[0].id == "synth/western/western-0/caption-0"
    assert {r.source for r in captions + qa} == {"synthetic"} and all(r.duration == 5.0 for r in qa)
    assert all(r.audio.startswith(str(corpus_dir)) and r.audio.endswith(".flac") for r in qa)
    for row, item in zip(qa, mcq):
        assert set(item) == {"id", "audio", "question", "options", "answer", "categories", "source"}
        assert item["id"] == row.id and item["audio"] == row.audio and item["source"] == "synthetic"
        assert item["categories"] == [row.id.rsplit("/", 1)[1]]
        assert row.turns[0].user == format_question(item["question"], item["options"])
        assert row.turns[0].assistant == f"({LETTERS[item['answer']]}) {item['options'][item['answer']]}"
    user = qa[0].turns[0].user.split("\n")
    assert user[0] == AUDIO and user[2].startswith("Options: (A) ") and user[3] == "Answer with the letter."
    assert format_answer(["w", "x", "y", "z"], 1) == "(B) x"
    write_rows(captions + qa, corpus_dir / "rows.jsonl")
    assert read_rows(corpus_dir / "rows.jsonl") == captions + qa


def test_determinism_and_splits(corpus_dir):
    first = corpus_rows(corpus_dir, seed=0)
    assert corpus_rows(corpus_dir, seed=0) == first
    assert corpus_rows(corpus_dir, seed=1).mcq != first.mcq
    test = corpus_rows(corpus_dir, seed=0, splits={"test"})
    assert test.captions and {r.split for r in test.captions + test.qa} == {"test"}
    assert all(item in first.mcq for item in test.mcq)  # a clip's questions do not depend on the others read


def test_every_instrument_asks_once_per_instrument(corpus_dir):
    labels = next(l for l in _labels(corpus_dir) if len(l["instruments"]) >= 2)
    values = corpus_values(_labels(corpus_dir))
    asked = questions(labels, np.random.default_rng(0), values, types=["instrument"], every_instrument=True)
    assert sorted(o[a] for _, o, a, _ in asked) == sorted(labels["instruments"])
    rows = corpus_rows(corpus_dir, every_instrument=True)
    assert len({m["id"] for m in rows.mcq}) == len(rows.mcq)  # ids stay unique
