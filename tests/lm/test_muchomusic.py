"""MuChoMusic: prompt, answer extraction (official and strict rules), scoring, reading, shuffling."""

import csv
import json

import pytest

from melos.lm.muchomusic import (EXAMPLE, Question, accuracy_interval, missing_audio, parse_answer, prompt,
                                 read_questions, score, shuffled)

OPTIONS = ["Piano", "Electric guitar", "Drums", "Violin"]


@pytest.mark.parametrize("output, official, strict", [
    ("(B)", 1, 1),
    ("B", 1, 1),
    ("The answer is C.", 2, 2),
    ("answer: d", None, 3),                    # official letters are uppercase only
    ("a guitar plays the riff", None, None),   # the article "a" is never option A
    ("A guitar plays the riff", 0, None),      # official: any uppercase A counts; strict: not a marked letter
    ("It is an electric guitar.", 1, 1),       # no letter: option text
    ("(A) or (B)", None, None),                # two letters and no option text: ambiguous
    ("", None, None),
    (None, None, None),
    ("Answer: B", None, 1),                    # official sees the A of "Answer" as well as B
    ("the answer is a guitar", None, None),
    ("Option B", 1, 1),
    ("b.", None, 1),
    ("B. Electric guitar", 1, 1),
    ("Question: Which?\n Options: (A) Piano (B) Electric guitar \n The correct answer is: D", 3, 3),
])
def test_parse_answer(output, official, strict):
    assert parse_answer(output, OPTIONS) == official
    assert parse_answer(output, OPTIONS, rule="strict") == strict


def test_official_quirks_are_reproduced():
    options = ["Piano", "Bass", "Acoustic guitar", "Violin"]
    assert parse_answer("Acoustic guitar", options) == 0          # the capital A of "Acoustic"
    assert parse_answer("Acoustic guitar", options, "strict") == 2
    nested = ["guitar", "electric guitar", "drums", "violin"]
    assert parse_answer("electric guitar", nested) == 0           # first option contained in the output
    assert parse_answer("electric guitar", nested, "strict") == 1  # the longer match wins
    with pytest.raises(ValueError, match="rule"):
        parse_answer("B", OPTIONS, rule="loose")


def test_prompt_matches_official_template():
    q = Question("1", "x.wav", "What plays the melody?", OPTIONS, 0)
    body = ("Question: What plays the melody?\n Options: (A) Piano (B) Electric guitar (C) Drums (D) Violin "
            "\n The correct answer is: ")
    assert prompt(q, ()) == body
    assert prompt(q) == EXAMPLE + "\n " + body
    assert EXAMPLE.endswith("\n The correct answer is: A") and EXAMPLE.count("\n") == 2


def _q(qid, answer, knowledge=(), reasoning=(), source="sdd"):
    return Question(qid, f"{qid}.wav", "?", OPTIONS, answer, source=source, knowledge=knowledge, reasoning=reasoning)


def test_score_counts_unanswered_as_wrong_and_groups_categories():
    questions = [_q("0", 0, knowledge=("melody",)),
                 _q("1", 1, knowledge=("melody", "harmony"), reasoning=("mood",)),
                 _q("2", 2, reasoning=("mood",), source="musiccaps"),
                 _q("3", 3, source="musiccaps")]
    outputs = ["(A)", "no idea", "C", "(A)"]   # right, unanswered, right, wrong
    result = score(questions, outputs)
    assert result["n"] == 4 and result["rule"] == "official"
    assert result["accuracy"] == 0.5
    assert result["instruction_following"] == 0.75
    assert result["predicted"] == [0, None, 2, 0]
    assert result["correct"] == [True, False, True, False]
    cats = result["per_category"]
    assert set(cats) == {"knowledge", "knowledge/melody", "knowledge/harmony", "reasoning", "reasoning/mood"}
    assert cats["knowledge"] == {"n": 2, "accuracy": 0.5, "instruction_following": 0.5}
    assert cats["knowledge/melody"] == {"n": 2, "accuracy": 0.5, "instruction_following": 0.5}
    assert cats["knowledge/harmony"] == {"n": 1, "accuracy": 0.0, "instruction_following": 0.0}
    assert cats["reasoning/mood"] == {"n": 2, "accuracy": 0.5, "instruction_following": 0.5}
    assert result["per_source"]["sdd"]["accuracy"] == 0.5
    assert result["per_source"]["musiccaps"] == {"n": 2, "accuracy": 0.5, "instruction_following": 1.0}
    with pytest.raises(ValueError, match="4 questions but 3 outputs"):
        score(questions, outputs[:3])


def test_accuracy_interval():
    low, high = accuracy_interval([True] * 30 + [False] * 70, seed=0)
    assert low < 0.3 < high and 0.15 < low and high < 0.45
    assert accuracy_interval([True] * 5) == (1.0, 1.0)
    assert accuracy_interval([True, False] * 20, seed=3) == accuracy_interval([True, False] * 20, seed=3)


CSV_FIELDS = ["question", "correct_answer", "distractor_1_answer", "distractor_2_answer", "distractor_3_answer",
              "dataset", "dataset_identifier", "genre", "music_knowledge", "music_reasoning"]


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _row(**changes):
    row = {"question": "Which instrument?", "correct_answer": "Piano", "distractor_1_answer": "Organ",
           "distractor_2_answer": "Drums", "distractor_3_answer": "Harp", "dataset": "sdd",
           "dataset_identifier": "415600.json", "genre": "Pop", "music_knowledge": "['instrumentation']",
           "music_reasoning": ""}
    row.update(changes)
    return row


def test_read_csv(tmp_path):
    _write_csv(tmp_path / "muchomusic.csv", [
        _row(), _row(dataset="musiccaps", dataset_identifier="-0Gj8_vB1q4_30.json", music_knowledge="",
                     music_reasoning="['mood and expression', 'genre and style']")])
    a, b = read_questions(tmp_path / "muchomusic.csv")
    assert (a.id, a.options, a.answer, a.source, a.genre) == ("0", ("Piano", "Organ", "Drums", "Harp"), 0, "sdd", "Pop")
    assert a.audio == str(tmp_path / "sdd/audio/00/415600.2min.mp3")
    assert a.categories == ["knowledge", "knowledge/instrumentation"]
    assert b.audio == str(tmp_path / "musiccaps/audio/[-0Gj8_vB1q4]-[30-40].wav")
    assert b.categories == ["reasoning", "reasoning/mood and expression", "reasoning/genre and style"]
    assert missing_audio([a, b, a]) == [a.audio, b.audio]
    (tmp_path / "sdd/audio/00").mkdir(parents=True)
    (tmp_path / "sdd/audio/00/415600.2min.mp3").write_bytes(b"")
    assert missing_audio([a, b]) == [b.audio]
    assert read_questions(tmp_path / "muchomusic.csv", audio_root="/data/mc")[0].audio == \
        "/data/mc/sdd/audio/00/415600.2min.mp3"


def test_read_csv_errors(tmp_path):
    path = tmp_path / "q.csv"
    _write_csv(path, [_row(question_id="q6"), _row(question_id="q7", distractor_3_answer="")])
    with pytest.raises(ValueError) as error:
        read_questions(path)
    assert str(error.value) == f"{path}: item q7: 3 options, MuChoMusic questions have 4"
    _write_csv(path, [{k: v for k, v in _row().items() if k not in ("distractor_2_answer", "dataset")}])
    with pytest.raises(ValueError, match=r"q.csv: missing columns: distractor_2_answer, dataset$"):
        read_questions(path)
    _write_csv(path, [_row(dataset="other")])
    with pytest.raises(ValueError, match=r"item 0: cannot place the audio.*give an audio_path"):
        read_questions(path)


def test_read_json_layouts(tmp_path):
    records = [dict(_row(), question_id=11, audio_path="clips/a.wav", music_knowledge=["melody"])]
    (tmp_path / "data.json").write_text(json.dumps(records))
    (q,) = read_questions(tmp_path / "data.json", audio_root=tmp_path / "root")
    assert (q.id, q.audio, q.knowledge, q.answer) == ("11", str(tmp_path / "root/clips/a.wav"), ("melody",), 0)
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    assert read_questions(tmp_path / "data.jsonl") == [replace_audio(q, tmp_path / "clips/a.wav")]

    answers = ["Ska", "Pop music", "Latin rock", "Reggae"]
    text = prompt(Question("0", "", "What genre is this?", answers, 1))
    prepared = {"id": 415600, "prompt": text, "answers": answers, "answer_orders": [3, 0, 2, 1], "dataset": "sdd",
                "genre": "Reggae", "reasoning": ["genre and style"], "knowledge": [],
                "audio_path": "data/sdd/audio/00/415600.2min.mp3", "model_output": "A"}
    (tmp_path / "prepared.json").write_text(json.dumps([prepared]))
    (p,) = read_questions(tmp_path / "prepared.json")
    assert (p.options[p.answer], p.order, p.reasoning) == ("Pop music", (3, 0, 2, 1), ("genre and style",))
    assert p.question == "What genre is this?" and prompt(p) == text
    assert shuffled(p, 5) == shuffled(replace_order(p), 5)   # the shuffle starts from the file's order

    (tmp_path / "bad.json").write_text(json.dumps([dict(prepared, answers=["Ska", "Pop", "Rock"])]))
    with pytest.raises(ValueError, match=r"bad.json: item 0: 3 options, MuChoMusic questions have 4"):
        read_questions(tmp_path / "bad.json")


def replace_audio(q, audio):
    from dataclasses import replace
    return replace(q, audio=str(audio))


def replace_order(q):
    """The same question with its options back in the file's order."""
    from dataclasses import replace
    options = [""] * 4
    for position, index in enumerate(q.order):
        options[index] = q.options[position]
    return replace(q, options=tuple(options), answer=0, order=(0, 1, 2, 3))


def test_shuffled_is_deterministic_and_moves_the_answer():
    questions = [_q(str(i), 0) for i in range(40)]
    once = [shuffled(q, 0) for q in questions]
    assert once == [shuffled(q, 0) for q in questions]
    assert [shuffled(s, 0) for s in once] == once
    positions = [s.answer for s in once]
    assert set(positions) == {0, 1, 2, 3}
    for s in once:
        assert s.options[s.answer] == "Piano" and sorted(s.options) == sorted(OPTIONS)
        assert [OPTIONS[i] for i in s.order] == list(s.options)
    assert [s.order for s in once] != [shuffled(q, 1).order for q in questions]
