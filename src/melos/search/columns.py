"""Manifest columns as filterable index metadata, joined on the audio file's path.

`melos embed --input files.jsonl` records each file's path but not the manifest's other fields
(culture, instrument, split, ...). `melos index build --manifest files.jsonl` brings them back:
a row matches an embedded file when both paths resolve to the same file, relative manifest
paths being taken against the manifest's folder as melos embed takes them; failing that, when
the manifest path relative to its folder equals the name melos embed gave the output (which is
that same relative path), so the join works from any working directory.

Scalar fields (text, numbers, booleans) and lists of scalars become columns; nested objects are
left out (named in `skipped`), as SQL filters cannot reach into them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

RESERVED = {"path", "window", "start", "n_windows", "vector", "score", "_distance", "_rowid"}


def path_key(path: str | Path, root: Path | None = None) -> str:
    """An absolute, normalised spelling of `path` (relative ones against `root` or the cwd)."""
    path = Path(path).expanduser()
    if root is not None and not path.is_absolute():
        path = root / path
    return os.path.normpath(os.path.abspath(path))


@dataclass
class ManifestColumns:
    """Manifest fields by file. `by_path` is keyed by `path_key`, `by_name` by the manifest path
    relative to its folder; `types` is the arrow type of each column."""

    by_path: dict[str, dict] = field(default_factory=dict)
    by_name: dict[str, dict] = field(default_factory=dict)
    types: dict[str, pa.DataType] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def lookup(self, path: str, name: str | None = None) -> dict | None:
        row = self.by_path.get(path_key(path))
        if row is None and name is not None:
            row = self.by_name.get(name)
        return row

    def attach(self, batch: pa.RecordBatch, names: dict[str, str | None]) -> pa.RecordBatch:
        """`batch` with one column per manifest field (null where a file has no manifest row).
        `names` maps an embedded path to its output name."""
        rows = [self.lookup(p, names.get(p)) for p in batch.column("path").to_pylist()]
        columns = [pa.array([None if r is None else r.get(k) for r in rows], type=t) for k, t in self.types.items()]
        fields = [*batch.schema, *(pa.field(k, t) for k, t in self.types.items())]
        return pa.RecordBatch.from_arrays([*batch.columns, *columns], schema=pa.schema(fields))


def read_columns(manifest: str | Path) -> ManifestColumns:
    """The filterable columns of a JSONL manifest (one JSON object with a `path` per line)."""
    manifest = Path(manifest).expanduser()
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: manifest not found")
    root = manifest.parent
    out = ManifestColumns()
    values: dict[str, list] = {}
    for n, line in enumerate(manifest.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            path = row["path"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{manifest}:{n}: expected a JSON object with a 'path'") from None
        fields = {k: v for k, v in row.items() if k not in RESERVED}
        out.by_path[path_key(path, root)] = fields
        name = Path(path).expanduser()
        if not name.is_absolute():
            out.by_name[Path(os.path.normpath(name)).as_posix()] = fields
        for k, v in fields.items():
            values.setdefault(k, []).append(v)
    for k, vs in values.items():
        kind = _arrow_type(vs)
        if kind is None:
            out.skipped.append(k)
        else:
            out.types[k] = kind
    return out


def _arrow_type(values: list) -> pa.DataType | None:
    """The column type for these JSON values, or None for nested objects or mixed kinds."""
    present = [v for v in values if v is not None]
    if any(isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v))
           for v in present):
        return None
    try:
        kind = pa.array(present).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return pa.string() if pa.types.is_null(kind) else kind

