"""What several dataset readers share: the reader record `melos data task` dispatches on,
line-numbered reading of metadata files (so errors can name the line), the missing-audio check,
key names and GiantSteps key annotations (read by both suites' key tasks)."""

from __future__ import annotations

import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_SHARPS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SHOWN_MISSING = 5  # missing audio files listed in the error


class MissingAudioWarning(UserWarning):
    """Some recordings a dataset's metadata lists have no audio file (an incomplete download);
    `paths` lists them."""

    def __init__(self, message: str, paths: list[str]):
        super().__init__(message)
        self.paths = paths


def check_audio(rows: list[dict], source: Path) -> list[dict]:
    """`rows` whose audio file exists. The missing ones are left out with a `MissingAudioWarning`
    naming their count and the first few; when none exists (a wrong root) it is an error."""
    missing = [row["path"] for row in rows if not Path(row["path"]).is_file()]
    if not missing:
        return rows
    shown = "\n".join(missing[:SHOWN_MISSING])
    if len(missing) == len(rows):
        raise ValueError(f"{source}: {len(missing)} of {len(rows)} listed recordings have no audio file "
                         f"(is this the dataset's folder as distributed?), e.g.:\n{shown}")
    warnings.warn(MissingAudioWarning(f"{source}: {len(missing)} of {len(rows)} listed recordings have no audio "
                                      f"file and are left out, e.g.:\n{shown}", missing), stacklevel=2)
    lost = set(missing)
    return [row for row in rows if row["path"] not in lost]


def hold_out(ids: list[str], fraction: float, seed: int) -> set[str]:
    """The ids (sorted, then shuffled with `seed`) of the first `fraction` of `ids`: a held-out
    split that depends only on the set of ids."""
    order = sorted(set(ids))
    random.Random(seed).shuffle(order)
    return set(order[: round(len(order) * fraction)])


def summary(rows: list[dict], missing: int = 0) -> str:
    """One line a user can check a dataset by: tracks per split, distinct labels, tracks without
    a label and missing audio (e.g. "train 3 · valid 1 · test 1 tracks; 3 labels; 1 missing audio")."""
    splits = Counter(row["split"] for row in rows)
    labels = [row["labels"] if isinstance(row["labels"], list) else [row["labels"]] for row in rows]
    parts = [" · ".join(f"{split} {splits[split]}" for split in ("train", "valid", "test") if splits[split])
             + " tracks", f"{len({label for item in labels for label in item})} labels"]
    if unlabelled := sum(not item for item in labels):
        parts.append(f"{unlabelled} tracks with no label")
    parts.append(f"{missing} missing audio" if missing else "no audio missing")
    return "; ".join(parts)


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
    expected: dict[str, int] = field(default_factory=dict)  # tracks per split in the complete official layout


def count_gaps(rows: list[dict], expected: dict[str, int]) -> list[str]:
    """One line per split whose track count differs from the complete layout's (an incomplete
    download, or another version of the split lists)."""
    counts = Counter(row["split"] for row in rows)
    return [f"{split}: {counts[split]} tracks where the official layout has {n}"
            for split, n in expected.items() if counts[split] != n]


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


def giantsteps_items(root: Path, audio: Path | None = None) -> list[tuple[str, str]]:
    """(audio path, key) per ``annotations/key/<id>.key`` in a GiantSteps-style folder, sorted by id.

    A file holds the key (GiantSteps key: ``"C minor"``) or, in GiantSteps-MTG key,
    ``key<TAB>confidence<TAB>comment``; there only confidence 2 with a single key (no ``/``) is
    kept, as Korzeniowski & Widmer 2018 and MARBLE do. Audio is ``<audio>/<id>.mp3``, by default
    ``root/audio``.
    """
    folder = root / "annotations" / "key"
    files = sorted(folder.glob("*.key"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .key annotation files found")
    audio = root / "audio" if audio is None else audio
    items = []
    for file in files:
        fields = [f.strip() for f in file.read_text().strip().split("\t")]
        text = fields[0]
        if len(fields) > 1 and (fields[1] != "2" or "/" in text):
            continue
        try:
            key = normalise_key(text)
        except ValueError:
            raise ValueError(f"{file}: unknown key {text!r}; expected e.g. 'C# minor' or 'Eb major'") from None
        items.append((str(audio / f"{file.stem}.mp3"), key))
    return items
