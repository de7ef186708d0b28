"""The training-data row of the music-language model: one audio excerpt and a conversation about it.

A row is `id`, `audio` (a file path), `offset` and `duration` (seconds; duration None = to the end),
`turns` (user/assistant pairs), `source` (the dataset) and `split` (train/valid/test, "" unknown).
A caption row is one turn whose user text is a caption instruction ("Describe this music.") and
whose answer is the caption.

Where the audio goes: the first user text may hold the marker `<audio>` once; the audio embeddings
replace it. Without a marker the audio goes before the text. A row holds at most one marker, and
only in the first user text, because each row has exactly one excerpt.

JSONL, one row a line: `{"id", "audio", "offset"?, "duration"?, "source"?, "split"?}` plus either
`"caption": str` (read as one turn under a caption instruction chosen from `CAPTION_PROMPTS` by a
stable hash of the id, so rereading gives the same prompt) or `"turns": [{"user", "assistant"}, ...]`.
Relative audio paths are resolved against a root (default: the JSONL's folder); other keys are
ignored. `write_rows` always writes `turns`, so a written file reads back to equal rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..utils.atomic import write_text

AUDIO = "<audio>"

CAPTION_PROMPTS = (
    "Describe this music.",
    "Write a caption for this music.",
    "Describe what you hear in this recording.",
    "Give a short description of this piece of music.",
    "What does this music sound like?",
    "Caption this audio clip.",
)


@dataclass
class Turn:
    """One exchange: the user's text and the assistant's answer (the training target)."""

    user: str
    assistant: str


@dataclass
class Row:
    """One training example; checked on construction (see `validate`). `turns` may be given as
    (user, assistant) tuples."""

    id: str
    audio: str
    turns: list[Turn]
    offset: float = 0.0
    duration: float | None = None
    source: str = ""
    split: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.turns, (list, tuple)):
            self.turns = [t if isinstance(t, Turn) else Turn(*t) for t in self.turns]
        if isinstance(self.audio, os.PathLike):
            self.audio = os.fspath(self.audio)
        validate(self)
        self.offset = float(self.offset)
        if self.duration is not None:
            self.duration = float(self.duration)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(row: Row) -> None:
    """Raise ValueError naming what is wrong with `row`: empty id or audio, negative offset,
    non-positive duration, no turns, an empty answer, or `<audio>` markers other than at most one
    in the first user text."""
    if not isinstance(row.id, str) or not row.id:
        raise ValueError("'id' must be a non-empty string")
    if not isinstance(row.audio, str) or not row.audio:
        raise ValueError(f"row {row.id}: 'audio' must be a non-empty path")
    if not _number(row.offset) or row.offset < 0:
        raise ValueError(f"row {row.id}: 'offset' must be a number >= 0, got {row.offset!r}")
    if row.duration is not None and (not _number(row.duration) or row.duration <= 0):
        raise ValueError(f"row {row.id}: 'duration' must be a number > 0 or null, got {row.duration!r}")
    if not isinstance(row.source, str) or not isinstance(row.split, str):
        raise ValueError(f"row {row.id}: 'source' and 'split' must be strings")
    if not isinstance(row.turns, list) or not row.turns:
        raise ValueError(f"row {row.id}: needs at least one turn")
    for i, turn in enumerate(row.turns):
        if not isinstance(turn.user, str) or not isinstance(turn.assistant, str):
            raise ValueError(f"row {row.id}: turn {i}: 'user' and 'assistant' must be strings")
        if not turn.assistant.strip():
            raise ValueError(f"row {row.id}: turn {i}: empty answer")
    markers = sum(t.user.count(AUDIO) + t.assistant.count(AUDIO) for t in row.turns)
    if markers > 1 or (markers == 1 and AUDIO not in row.turns[0].user):
        raise ValueError(f"row {row.id}: {markers} '{AUDIO}' markers; at most one, in the first user text")


def caption_prompt(key: str) -> str:
    """A caption instruction chosen by a stable hash of `key` (a row id), so prompts vary across rows
    but never between runs."""
    digest = hashlib.sha256(key.encode()).digest()
    return CAPTION_PROMPTS[int.from_bytes(digest[:4], "little") % len(CAPTION_PROMPTS)]


def caption_row(id: str, audio: str | os.PathLike, caption: str, **fields) -> Row:
    """A caption row: `<audio>` then a caption instruction, answered by `caption`. `fields` are the
    other Row fields (offset, duration, source, split)."""
    return Row(id, os.fspath(audio), [Turn(f"{AUDIO}\n{caption_prompt(id)}", caption)], **fields)


def audio_split(text: str) -> tuple[str, str]:
    """The user text before and after the audio: around the marker, or ("", text) without one."""
    before, marker, after = text.partition(AUDIO)
    return (before, after) if marker else ("", text)


def _from_dict(entry: object, root: str | Path) -> Row:
    if not isinstance(entry, dict):
        raise ValueError(f"expected a JSON object, got {type(entry).__name__}")
    for key in ("id", "audio"):
        if key not in entry:
            raise ValueError(f"missing '{key}'")
    if ("caption" in entry) == ("turns" in entry):
        raise ValueError("needs exactly one of 'caption' and 'turns'" + (", not both" if "caption" in entry else ""))
    audio = entry["audio"]
    if isinstance(audio, str) and audio:
        audio = os.path.join(root, audio)
    fields = {k: entry[k] for k in ("offset", "duration", "source", "split") if k in entry}
    if "caption" in entry:
        if not isinstance(entry["caption"], str) or not entry["caption"].strip():
            raise ValueError("empty answer: 'caption' must be a non-empty string")
        return caption_row(entry["id"], audio, entry["caption"], **fields)
    turns = entry["turns"]
    if not isinstance(turns, list) or not all(isinstance(t, dict) and set(t) >= {"user", "assistant"} for t in turns):
        raise ValueError("'turns' must be a list of {\"user\", \"assistant\"} objects")
    return Row(entry["id"], audio, [Turn(t["user"], t["assistant"]) for t in turns], **fields)


def read_rows(path: str | Path, root: str | Path | None = None) -> list[Row]:
    """Rows from a JSONL file (format in the module doc); relative audio paths are resolved against
    `root`, default the file's folder. Blank lines are skipped. Raises ValueError naming the file
    and line of the first bad row, or of a repeated id."""
    path = Path(path)
    root = path.parent if root is None else Path(root)
    rows, seen = [], {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = _from_dict(json.loads(line), root)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: invalid JSON: {e.msg} (column {e.colno})") from None
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}:{number}: {e}") from None
            if row.id in seen:
                raise ValueError(f"{path}:{number}: id {row.id!r} repeats line {seen[row.id]}")
            seen[row.id] = number
            rows.append(row)
    return rows


def _to_dict(row: Row, root: str | Path | None) -> dict:
    audio = row.audio
    if root is not None and not os.path.relpath(audio, root).startswith(os.pardir):
        audio = os.path.relpath(audio, root)
    entry = {"id": row.id, "audio": audio, "offset": row.offset, "duration": row.duration,
             "turns": [{"user": t.user, "assistant": t.assistant} for t in row.turns]}
    entry.update({k: getattr(row, k) for k in ("source", "split") if getattr(row, k)})
    return entry


def write_rows(rows: Iterable[Row], path: str | Path, root: str | Path | None = None) -> Path:
    """Write rows as JSONL, atomically. Audio paths under `root` are written relative to it (read
    them back with the same root, or with none when `root` is the file's folder); others as they are."""
    lines = []
    for row in rows:
        validate(row)
        lines.append(json.dumps(_to_dict(row, root), ensure_ascii=False) + "\n")
    return write_text(path, "".join(lines))


def check_audio(rows: Iterable[Row]) -> list[str]:
    """One line per row whose audio file does not exist ("id: missing audio path"); reads no audio.
    The caller decides whether to stop, warn or drop."""
    exists: dict[str, bool] = {}
    missing = []
    for row in rows:
        if row.audio not in exists:
            exists[row.audio] = os.path.isfile(row.audio)
        if not exists[row.audio]:
            missing.append(f"{row.id}: missing audio {row.audio}")
    return missing
