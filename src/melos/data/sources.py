"""Turn what a user points at (a file, a folder, a JSONL manifest) into a list of audio files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..audio import AUDIO_EXTENSIONS, audio_files
from .manifest import read_manifest


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
        files = audio_files(input)
        if not files:
            raise FileNotFoundError(f"{input}: no audio files in this folder "
                                    f"(looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
        return [AudioSource(p, p.relative_to(input).as_posix()) for p in files]
    if input.suffix.lower() == ".jsonl":
        return _read_manifest(input)
    return [AudioSource(input, input.name)]


def _read_manifest(manifest: Path) -> list[AudioSource]:
    return [AudioSource(Path(row.path), _output_name(Path(row.path), manifest.parent))
            for row in read_manifest(manifest)]


def _output_name(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # outside the manifest's folder: keep the parent folder name to limit clashes
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
