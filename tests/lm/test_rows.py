"""The row format: JSONL round trip, path resolution, and errors that name the file and line."""

import json

import pytest

from melos.lm.rows import (AUDIO, CAPTION_PROMPTS, Row, Turn, audio_split, caption_row, check_audio, read_rows,
                           write_rows)


def _rows(folder):
    return [caption_row("a", str(folder / "a.wav"), "Calm piano.", duration=10.0, source="test", split="train"),
            Row("b", str(folder / "sub" / "b.flac"), [(f"{AUDIO}\nWhat plays?", "A ney."), ("And the metre?", "9/8.")],
                offset=2.5)]


def test_round_trip(tmp_path):
    rows = _rows(tmp_path)
    path = write_rows(rows, tmp_path / "rows.jsonl")
    assert read_rows(path) == rows
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]  # no temporary file left behind
    write_rows(rows, path, root=tmp_path)
    assert json.loads(path.read_text().splitlines()[1])["audio"] == "sub/b.flac"
    assert read_rows(path) == rows


def test_caption_lines_and_relative_audio(tmp_path):
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "rows.jsonl"
    path.write_text('{"id": "x", "audio": "x.wav", "caption": "Loud drums."}\n\n'
                    '{"id": "y", "audio": "/abs/y.wav", "turns": [{"user": "Q?", "assistant": "A."}], "offset": 1}\n')
    x, y = read_rows(path)
    assert x.audio == str(tmp_path / "d" / "x.wav") and y.audio == "/abs/y.wav"
    assert len(x.turns) == 1 and x.turns[0].assistant == "Loud drums."
    before, after = audio_split(x.turns[0].user)
    assert before == "" and after.strip() in CAPTION_PROMPTS
    assert read_rows(path) == [x, y]  # the prompt is a stable choice
    assert read_rows(path, root=tmp_path)[0].audio == str(tmp_path / "x.wav")
    assert y.offset == 1.0 and isinstance(y.offset, float) and y.duration is None
    assert audio_split("Q?") == ("", "Q?") and audio_split(f"Hear {AUDIO} now") == ("Hear ", " now")


GOOD = '{"id": "ok", "audio": "a.wav", "caption": "Fine."}'


@pytest.mark.parametrize("line, message", [
    ('{"id": "r", "caption": "x"}', "missing 'audio'"),
    ('{"audio": "a.wav", "caption": "x"}', "missing 'id'"),
    ('{"id": "r", "audio": "a.wav"}', "exactly one of 'caption' and 'turns'"),
    ('{"id": "r", "audio": "a.wav", "caption": "x", "turns": [{"user": "u", "assistant": "a"}]}', "not both"),
    ('{"id": "r", "audio": "a.wav", "caption": " "}', "empty answer"),
    ('{"id": "r", "audio": "a.wav", "turns": [{"user": "u", "assistant": ""}]}', "empty answer"),
    ('{"id": "r", "audio": "a.wav", "turns": []}', "at least one turn"),
    ('{"id": "r", "audio": "a.wav", "caption": "x", "offset": -1}', "'offset'"),
    ('{"id": "r", "audio": "a.wav", "caption": "x", "duration": -2}', "'duration'"),
    ('{"id": "r", "audio": "a.wav", "turns": [{"user": "<audio> <audio>", "assistant": "a"}]}', "2 '<audio>' markers"),
    ('{"id": "r", "audio": "a.wav", "turns": [{"user": "u", "assistant": "a"}, '
     '{"user": "<audio>", "assistant": "b"}]}', "1 '<audio>' markers"),
    ('{"id": "r", "audio": "a.wav", "turns": [{"user": "u"}]}', "'turns' must be a list"),
    ('{"id": "r", "audio": "a.wav", "caption": "x"', "invalid JSON"),
    ('[1, 2]', "expected a JSON object"),
    (GOOD, "repeats line 1"),
])
def test_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD + "\n" + line + "\n")
    with pytest.raises(ValueError) as error:
        read_rows(path)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)


def test_construction_checks_and_check_audio(tmp_path):
    with pytest.raises(ValueError, match="empty answer"):
        Row("r", "a.wav", [Turn("u", "")])
    (tmp_path / "here.wav").touch()
    rows = [caption_row("in", tmp_path / "here.wav", "x"), caption_row("out", tmp_path / "gone.wav", "x")]
    assert check_audio(rows) == [f"out: missing audio {tmp_path / 'gone.wav'}"]
    rows[0].offset = -1.0  # rows are checked again when written
    with pytest.raises(ValueError, match="offset"):
        write_rows(rows, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
