"""What several dataset readers share: the reader record `melos data task` dispatches on,
line-numbered reading of metadata files (so errors can name the line), the missing-audio check,
key names and GiantSteps key annotations (read by both suites' key tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARPS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SHOWN_MISSING = 5  # missing audio files listed in the error


def check_audio(rows: list[dict], source: Path) -> list[dict]:
    """Raise one error naming how many rows have no audio file (and the first few); else return `rows`."""
    missing = [row["path"] for row in rows if not Path(row["path"]).is_file()]
    if missing:
        shown = "\n".join(missing[:SHOWN_MISSING])
        raise ValueError(f"{source}: {len(missing)} of {len(rows)} listed recordings have no audio file, "
                         f"e.g.:\n{shown}")
    return rows


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank stripped lines with their 1-based numbers; a missing file is named in the error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


@dataclass(frozen=True)
class DatasetReader:
    """How `melos data task NAME` turns a dataset into a probing task."""

    read: Callable[[Path], list[dict]]
    task_type: str
    options: dict[str, Any] = field(default_factory=dict)  # extra task-file keys (top_k, window, ...)


def normalise_key(text: str) -> str:
    """Map a key name such as ``"Eb major"`` or ``"c# MINOR"`` to mir_eval spelling (``"D# major"``)."""
    parts = text.split()
    if len(parts) != 2 or parts[1].lower() not in ("major", "minor"):
        raise ValueError(f"unknown key {text!r}")
    tonic, mode = parts[0].replace("♯", "#").replace("♭", "b"), parts[1].lower()
    letter, accidentals = tonic[:1].upper(), tonic[1:]
    if letter not in _PITCH_CLASS or any(a not in "#b" for a in accidentals):
        raise ValueError(f"unknown key {text!r}")
    pitch = (_PITCH_CLASS[letter] + accidentals.count("#") - accidentals.count("b")) % 12
    return f"{_SHARPS[pitch]} {mode}"


def giantsteps_items(root: Path) -> list[tuple[str, str]]:
    """(audio path, key) per ``annotations/key/<id>.key`` in a GiantSteps-style folder, sorted by id."""
    folder = root / "annotations" / "key"
    files = sorted(folder.glob("*.key"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .key annotation files found")
    items = []
    for file in files:
        text = file.read_text().strip()
        try:
            key = normalise_key(text)
        except ValueError:
            raise ValueError(f"{file}: unknown key {text!r}; expected e.g. 'C# minor' or 'Eb major'") from None
        items.append((str(root / "audio" / f"{file.stem}.mp3"), key))
    return items
