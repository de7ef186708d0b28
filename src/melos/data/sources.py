"""Turn what a user points at (a file, a folder, a JSONL manifest) into a list of audio files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS


@dataclass(frozen=True)
class AudioSource:
    """One input file and the name its outputs get, relative to an output folder."""

    path: Path
    name: str


def list_sources(input: str | Path) -> list[AudioSource]:
    """Audio files named by `input`.

    - a file with an audio extension: that file;
    - a `.jsonl` file: one JSON object per line with a `path` (relative paths are taken relative
      to the manifest's folder);
    - a folder: every audio file below it, recursively, in sorted order.

    Output names keep the relative path and the extension (`a/song.ogg` -> `a/song.ogg`), so two
    files that differ only by extension never collide.
    """
    input = Path(input).expanduser()
    if not input.exists():
        raise FileNotFoundError(f"{input}: no such file or folder")
    if input.is_dir():
        files = sorted(p for p in input.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        return [AudioSource(p, p.relative_to(input).as_posix()) for p in files]
    if input.suffix.lower() == ".jsonl":
        return _read_manifest(input)
    return [AudioSource(input, input.name)]


def _read_manifest(manifest: Path) -> list[AudioSource]:
    sources = []
    for n, line in enumerate(manifest.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            path = Path(row["path"]).expanduser()
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{manifest}:{n}: expected a JSON object with a 'path' ({err})") from None
        if not path.is_absolute():
            path = manifest.parent / path
        sources.append(AudioSource(path, _output_name(path, manifest.parent)))
    return sources


def _output_name(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # outside the manifest's folder: keep the parent folder name to limit clashes
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
