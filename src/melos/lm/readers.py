"""Public music caption and question-answering datasets, from their distributed files, as rows.

Every reader is `read_<name>(path, audio_root, ..., split=None, skip_missing=False) -> list[Row]`:
`path` is the dataset's annotation file, `audio_root` the folder holding the audio the user
downloaded (no reader downloads or reads audio). `split` keeps only rows of that split. A malformed
entry raises ValueError naming the file and the entry (JSON "entry N", JSONL "line N", CSV and
parquet "row N", all from 1, CSV rows not counting the header). Rows whose audio file is missing are
kept and counted in one logged warning (list them with `rows.check_audio`); `skip_missing=True`
drops them instead, with one log line giving the count.

  musiccaps      `musiccaps-public.csv` (Google; ytid, start_s, end_s, caption, is_audioset_eval):
                 caption rows; split test where is_audioset_eval, else train.
  musicqa        MU-LLaMA's `PretrainMusicQA.json`, `FinetuneMusicQA.json`, `EvalMusicQA.json`: a
                 list of {"audio_name", "conversation": [{"from": "human"|"gpt", "value"}, ...]},
                 audio in its `audios/` folder; split test for the Eval file, train for the others.
  musicinstruct  MusiLingo's `music_instruct.json` (`_short`, `_long`): {"QA": [{"ytid", "question",
                 "answer", "is_audioset_eval", ...}]} over MusicCaps clips.
  lp-musiccaps   LP-MusicCaps MSD / MTT / MC tables (JSON, JSONL, CSV or
                 parquet): caption_writing, caption_summary, caption_paraphrase,
                 caption_attribute_prediction (and caption_ground_truth in MC); the audio is the
                 entry's `path` (MSD, MTT) or `{fname}.wav` (MC) unless a pattern is given.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from .rows import Row, Turn, caption_row

log = logging.getLogger(__name__)

LP_CAPTION_FIELDS = ("caption_writing", "caption_summary", "caption_paraphrase", "caption_attribute_prediction",
                     "caption_ground_truth")


def _records(path: Path, key: str | None = None) -> Iterator[tuple[str, dict]]:
    """(where, entry) for each entry of a JSON list (or the list under `key` of a JSON object),
    JSONL, CSV or parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for i, entry in enumerate(csv.DictReader(f), 1):
                yield f"row {i}", entry
    elif suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield f"line {i}", json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}: line {i}: invalid JSON: {e.msg}") from None
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON: {e.msg} (line {e.lineno})") from None
        if isinstance(data, dict) and key is not None and key in data:
            data = data[key]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of entries" + (f" or {{{key!r}: [...]}}" if key else ""))
        for i, entry in enumerate(data, 1):
            yield f"entry {i}", entry
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, entry in enumerate(pq.read_table(path).to_pylist(), 1):
            yield f"row {i}", entry
    else:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; expected .json, .jsonl, .csv or .parquet")


def _need(entry: dict, *keys: str) -> None:
    for key in keys:
        value = entry.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"missing or empty {key!r}")


def _text(entry: dict, key: str) -> str:
    _need(entry, key)
    if not isinstance(entry[key], str):
        raise ValueError(f"{key!r} is not text: {entry[key]!r}")
    return entry[key].strip()


def _truth(value: object) -> bool:
    """A boolean from JSON (true) or CSV text ("True", "1")."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _audio(audio_root: str | Path, pattern: str, entry: dict) -> str:
    try:
        return os.path.join(audio_root, pattern.format(**entry))
    except (KeyError, IndexError) as e:
        raise ValueError(f"audio pattern {pattern!r} names a missing field {e}") from None


def _seconds(entry: dict, key: str) -> float:
    try:
        return float(entry[key])
    except (TypeError, ValueError):
        raise ValueError(f"{key!r} is not a number: {entry[key]!r}") from None


def _read(path: Path, make: Callable[[str, dict], Row], split: str | None, skip_missing: bool,
          key: str | None = None) -> list[Row]:
    """Rows made by `make(where, entry)` from each entry (ids unique), errors prefixed with the file
    and entry; then the split filter and the missing-audio report (module doc)."""
    rows, seen = [], {}
    for where, entry in _records(path, key):
        try:
            if not isinstance(entry, dict):
                raise ValueError(f"expected an object, got {type(entry).__name__}")
            row = make(where, entry)
            if row.id in seen:
                raise ValueError(f"id {row.id!r} repeats {seen[row.id]}")
        except ValueError as e:
            raise ValueError(f"{path}: {where}: {e}") from None
        seen[row.id] = where
        rows.append(row)
    if split is not None:
        rows = [row for row in rows if row.split == split]
    exists = {audio: os.path.isfile(audio) for audio in {row.audio for row in rows}}
    missing = sum(not exists[row.audio] for row in rows)
    if missing and skip_missing:
        log.warning("%s: skipped %d of %d rows whose audio file is missing", path, missing, len(rows))
        rows = [row for row in rows if exists[row.audio]]
    elif missing:
        log.warning("%s: %d of %d rows name a missing audio file (list them with check_audio)", path, missing, len(rows))
    return rows


def _number_of(where: str) -> str:
    return where.split()[-1]


def read_musiccaps(path: str | Path, audio_root: str | Path, pattern: str = "{ytid}.wav", clipped: bool = True,
                   split: str | None = None, skip_missing: bool = False) -> list[Row]:
    """Caption rows from `musiccaps-public.csv`. MusicCaps ships YouTube ids and times, not audio:
    `pattern` (formatted with the CSV's columns, e.g. "[{ytid}]-[{start_s}-{end_s}].wav") names each
    downloaded file under `audio_root`. `clipped`: the files are the 10 s excerpts, so offset 0;
    otherwise they are the whole videos and the offset is start_s. Duration is end_s - start_s."""
    def make(where: str, entry: dict) -> Row:
        _need(entry, "ytid", "start_s", "end_s")
        start, end = _seconds(entry, "start_s"), _seconds(entry, "end_s")
        if end <= start:
            raise ValueError(f"end_s {end:g} is not after start_s {start:g}")
        return caption_row(f"musiccaps/{entry['ytid']}", _audio(audio_root, pattern, entry), _text(entry, "caption"),
                           offset=0.0 if clipped else start, duration=end - start, source="musiccaps",
                           split="test" if _truth(entry.get("is_audioset_eval")) else "train")
    return _read(Path(path), make, split, skip_missing)


def read_musicqa(path: str | Path, audio_root: str | Path, split: str | None = None,
                 skip_missing: bool = False) -> list[Row]:
    """Rows from a MusicQA (MU-LLaMA) JSON file: each entry's conversation, human and gpt messages in
    alternation, about `audio_root/audio_name` (MusicQA's `audios/` folder; "audio" is accepted for
    "audio_name"). The whole file is the excerpt. Split test for `EvalMusicQA.json`, train for the
    Pretrain and Finetune files, else ""."""
    path = Path(path)
    name = path.name.lower()
    file_split = "test" if name.startswith("eval") else "train" if name.startswith(("pretrain", "finetune")) else ""

    def make(where: str, entry: dict) -> Row:
        audio = entry.get("audio_name") or entry.get("audio")
        if not isinstance(audio, str) or not audio.strip():
            raise ValueError("missing or empty 'audio_name'")
        messages = entry.get("conversation")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("missing 'conversation' (a list of {\"from\", \"value\"} messages)")
        roles = [m.get("from") for m in messages]
        if not roles or len(roles) % 2 or any(r not in ("human", "user") for r in roles[::2]) \
                or any(r not in ("gpt", "assistant") for r in roles[1::2]):
            raise ValueError(f"'conversation' must alternate human and gpt messages, got {roles}")
        values = [m.get("value") for m in messages]
        if not all(isinstance(v, str) for v in values):
            raise ValueError("a message has no text 'value'")
        turns = [Turn(q.strip(), a.strip()) for q, a in zip(values[::2], values[1::2])]
        return Row(f"musicqa/{path.stem}/{_number_of(where)}", os.path.join(audio_root, audio), turns,
                   source="musicqa", split=file_split)
    return _read(path, make, split, skip_missing)


def read_musicinstruct(path: str | Path, audio_root: str | Path, pattern: str = "{ytid}.wav",
                       split: str | None = None, skip_missing: bool = False) -> list[Row]:
    """Question-answer rows from MusicInstruct (MusiLingo) JSON: {"QA": [{"ytid", "question", "answer",
    "is_audioset_eval", ...}]} (a plain list is accepted too). The audio is the MusicCaps clip named
    by `pattern` under `audio_root`; split test where is_audioset_eval, else train."""
    path = Path(path)

    def make(where: str, entry: dict) -> Row:
        _need(entry, "ytid")
        return Row(f"musicinstruct/{path.stem}/{_number_of(where)}", _audio(audio_root, pattern, entry),
                   [Turn(_text(entry, "question"), _text(entry, "answer"))], source="musicinstruct",
                   split="test" if _truth(entry.get("is_audioset_eval")) else "train")
    return _read(path, make, split, skip_missing, key="QA")


def read_lp_musiccaps(path: str | Path, audio_root: str | Path, caption_field: str = "caption_writing",
                      pattern: str | None = None, split: str | None = None, skip_missing: bool = False) -> list[Row]:
    """Caption rows from an LP-MusicCaps table (MSD, MTT or MC; .json, .jsonl, .csv or .parquet).
    `caption_field` picks the caption (one of LP_CAPTION_FIELDS). The audio is `pattern` formatted
    with the entry's fields under `audio_root`; by default the entry's `path` (MSD, MTT), else
    "{fname}.wav" (MC). The id is track_id (MSD, MTT) or fname (MC). Split: MC's is_audioset_eval
    (test/train), else the file name's train/valid/test prefix (Hugging Face shards), else ""."""
    if caption_field not in LP_CAPTION_FIELDS:
        raise ValueError(f"caption_field {caption_field!r} is not one of {LP_CAPTION_FIELDS}")
    path = Path(path)
    name = path.name.lower()
    file_split = next((s for s in ("train", "valid", "test") if name.startswith(s)), "")

    def make(where: str, entry: dict) -> Row:
        key = entry.get("track_id") or entry.get("fname")
        if key is None or not str(key).strip():
            raise ValueError("missing 'track_id' (MSD, MTT) or 'fname' (MC)")
        row_split = file_split
        if entry.get("is_audioset_eval") not in (None, ""):
            row_split = "test" if _truth(entry["is_audioset_eval"]) else "train"
        audio = _audio(audio_root, pattern or ("{path}" if entry.get("path") else "{fname}.wav"), entry)
        return caption_row(f"lp-musiccaps/{key}", audio, _text(entry, caption_field), source="lp-musiccaps",
                           split=row_split)
    return _read(path, make, split, skip_missing)


READERS: dict[str, Callable[..., list[Row]]] = {
    "musiccaps": read_musiccaps,
    "musicqa": read_musicqa,
    "musicinstruct": read_musicinstruct,
    "lp-musiccaps": read_lp_musiccaps,
}
