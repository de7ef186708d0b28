"""Training manifests: JSONL rows with `path`, `duration` and optional `source`/`culture`/`tags`.

`scan_folder` builds one from a folder by reading file headers only (no decoding), so a
collection of thousands of tracks is scanned in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from tqdm.auto import tqdm

from ..audio import AudioError, audio_files, info
from ..utils.atomic import write_text


@dataclass
class ManifestRow:
    path: str
    duration: float | None = None
    source: str | None = None
    culture: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class ScanResult:
    rows: list[ManifestRow]
    failed: dict[str, str]

    @property
    def hours(self) -> float:
        return sum(r.duration or 0.0 for r in self.rows) / 3600


def scan_folder(folder: str | Path, source: str | None = None, culture: str | None = None,
                progress: bool = True, allow_truncated: bool = False) -> ScanResult:
    """Every audio file below `folder`, with its duration from the header.

    Unreadable files are left out and listed in `failed` (path -> reason); so are truncated
    ones, unless `allow_truncated` lists them with the duration present (logged once each).
    `source` defaults to the folder's name.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = audio_files(folder)
    rows, failed = [], {}
    for path in tqdm(files, desc="scan", unit="file", disable=not progress):
        try:
            duration = info(path, allow_truncated).duration
            rows.append(ManifestRow(str(path), round(duration, 3), source or folder.name, culture))
        except AudioError as err:
            failed[str(path)] = err.reason
    return ScanResult(rows, failed)


def fill_durations(rows: list[ManifestRow], progress: bool = True,
                   allow_truncated: bool = False) -> tuple[list[ManifestRow], dict[str, str]]:
    """`rows` with every missing `duration` read from the file's header, as `scan_folder` does.

    A hand-written manifest of paths (or one mixing rows with and without durations) can then
    train. Rows that already have a duration are kept as they are, without touching the file.
    Returns the rows whose duration is known and the unreadable files (path -> reason); a
    truncated file is unreadable unless `allow_truncated`, which gives the duration present.
    """
    n_missing = sum(r.duration is None for r in rows)
    out, failed = [], {}
    with tqdm(total=n_missing, desc="durations", unit="file", disable=not progress or n_missing < 100) as bar:
        for row in rows:
            if row.duration is None:
                bar.update()
                try:
                    row = replace(row, duration=round(info(row.path, allow_truncated).duration, 3))
                except AudioError as err:
                    failed[row.path] = err.reason
                    continue
            out.append(row)
    return out, failed


def write_manifest(rows: list[ManifestRow], path: str | Path) -> None:
    """Atomic JSONL write (temp file, then rename)."""
    write_text(path, "".join(json.dumps({k: v for k, v in asdict(row).items() if v not in (None, [])}) + "\n"
                             for row in rows))


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Rows of a JSONL manifest. Each line needs a `path` (relative paths are resolved against
    the manifest's folder); keys other than the ManifestRow fields (labels, split, ...) are
    ignored here."""
    path = Path(path)
    names = {f.name for f in fields(ManifestRow)}
    rows = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: manifest not found") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
            row = ManifestRow(**{k: v for k, v in values.items() if k in names})
        except (json.JSONDecodeError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}:{n}: expected a JSON object with a 'path' ({err})") from None
        row.path = str(Path(row.path).expanduser())
        if not Path(row.path).is_absolute():
            row.path = str(path.parent / row.path)
        rows.append(row)
    return rows
