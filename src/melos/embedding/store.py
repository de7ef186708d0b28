"""On-disk results of `melos embed`: `index.jsonl` plus one of two formats.

- safetensors (default): `OUT/<relative path>.safetensors` per audio file (`Embeddings`).
- parquet (`--format parquet`, pooled output only): `OUT/parquet/part-<uuid>.parquet` files, each
  written atomically once complete and holding several files' rows, so Ray, DuckDB or pandas read
  the folder directly (`SELECT * FROM 'OUT/parquet/*.parquet'`). Schema, one row per
  (file, window):

      path       string                          the input path, as in index.jsonl
      window     int32                           window index within the file (0, 1, ...)
      start      float64                         window start in seconds
      layer_<L>  fixed_size_list<float32>[H]     mean-pooled hidden state L, one column per kept layer

  The schema metadata holds the run's settings as strings, the same dict the safetensors files
  carry less the per-file `source` and `duration` (those are in index.jsonl), plus `layers`:
  model, sample_rate, frame_rate, window, hop, pool, layers ("0,6,12").
  Each ok row of index.jsonl names its part in `output` (`parquet/part-....parquet`). A part
  that no row names (written by a worker killed before it reported) is removed at the end of
  the run; `read_parquet` reads only the named parts, so it is exact even before that.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from safetensors.torch import load_file, safe_open, save_file

from ..utils.atomic import atomic_file

if TYPE_CHECKING:
    import pyarrow as pa

    from ..data.sources import AudioSource

INDEX = "index.jsonl"
SUFFIX = ".safetensors"
PARQUET_DIR = "parquet"


@dataclass
class IndexRow:
    """One line of index.jsonl. `status` is "ok" or "error"; `error` says why a file failed."""

    path: str
    status: str
    output: str | None = None
    duration: float | None = None
    n_windows: int | None = None
    error: str | None = None


@dataclass
class Embeddings:
    """What one output file holds.

    Attributes:
        embeddings: float tensor [n_layers, n_windows, H] (pooled) or [n_layers, T, H] (frames
            of all windows, concatenated in window order).
        window_starts: seconds, [n_windows].
        window_frames: frames per window, [n_windows] (to split frame-level output).
        layers: hidden-state index of each row of `embeddings`, [n_layers].
        metadata: model, source path, rates, window settings (strings).
    """

    embeddings: torch.Tensor
    window_starts: torch.Tensor
    window_frames: torch.Tensor
    layers: torch.Tensor
    metadata: dict[str, str]

    def save(self, path: Path) -> None:
        """Atomic: written to a temp file in the same folder, then renamed."""
        tensors = {"embeddings": self.embeddings.contiguous(), "window_starts": self.window_starts,
                   "window_frames": self.window_frames, "layers": self.layers}
        with atomic_file(path) as tmp:
            save_file(tensors, tmp, metadata=self.metadata)

    @classmethod
    def load(cls, path: str | Path) -> "Embeddings":
        tensors = load_file(path)
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
        return cls(tensors["embeddings"], tensors["window_starts"], tensors["window_frames"], tensors["layers"],
                   metadata)


class Index:
    """Append-only index.jsonl: one row per finished file, flushed at once, so an interrupted
    run keeps every row it wrote. When a path appears twice, the last row wins."""

    def __init__(self, out_dir: Path, resume: bool):
        self.path = out_dir / INDEX
        self.rows: dict[str, IndexRow] = read_index(self.path) if resume else {}
        out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a" if resume else "w")

    def done(self, path: str, out_dir: Path) -> bool:
        """Whether `path` finished successfully in an earlier run and its output (a file, or a
        folder for `melos sense`) is still there."""
        row = self.rows.get(path)
        return row is not None and row.status == "ok" and row.output is not None and (out_dir / row.output).exists()

    def add(self, row: IndexRow) -> None:
        self.rows[row.path] = row
        self._file.write(json.dumps(asdict(row)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_index(path: Path) -> dict[str, IndexRow]:
    """Rows of an index.jsonl by path; a torn last line from a killed run is ignored."""
    rows: dict[str, IndexRow] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = IndexRow(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue
            rows[row.path] = row
    return rows


@dataclass
class RunSummary:
    """What a batch run over files did (`melos embed`, `melos sense`). `failed` maps each bad file to the reason."""

    out_dir: Path
    n_done: int = 0
    n_skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


class Sink(Protocol):
    """Where finished files go. `add` and `flush` return the index rows of files now on disk."""

    def add(self, source: "AudioSource", embeddings: Embeddings, duration: float) -> list[IndexRow]: ...

    def flush(self) -> list[IndexRow]: ...


class SafetensorsSink:
    """One `<name>.safetensors` per file, written at once."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir

    def add(self, source: "AudioSource", embeddings: Embeddings, duration: float) -> list[IndexRow]:
        output = source.name + SUFFIX
        embeddings.save(self.out_dir / output)
        return [IndexRow(str(source.path), "ok", output, duration, embeddings.window_starts.numel())]

    def flush(self) -> list[IndexRow]:
        return []


class ParquetSink:
    """Buffers finished files and writes them as one part once `max_files` are waiting or
    `max_seconds` passed since the last part, and on `flush`; rows are reported only then."""

    def __init__(self, out_dir: Path, metadata: dict[str, str], layer_ids: list[int], max_files: int = 16,
                 max_seconds: float = 60.0):
        self.out_dir, self.layer_ids, self.max_files, self.max_seconds = out_dir, layer_ids, max_files, max_seconds
        self.metadata = {**metadata, "layers": ",".join(map(str, layer_ids))}
        self.files: list[tuple[str, Embeddings, float]] = []
        self.last = time.monotonic()

    def add(self, source: "AudioSource", embeddings: Embeddings, duration: float) -> list[IndexRow]:
        self.files.append((str(source.path), embeddings, duration))
        if len(self.files) >= self.max_files or time.monotonic() - self.last >= self.max_seconds:
            return self.flush()
        return []

    def flush(self) -> list[IndexRow]:
        self.last = time.monotonic()
        if not self.files:
            return []
        output = f"{PARQUET_DIR}/part-{uuid.uuid4().hex}.parquet"
        write_part(self.out_dir / output, [(p, e) for p, e, _ in self.files], self.layer_ids, self.metadata)
        rows = [IndexRow(p, "ok", output, d, e.window_starts.numel()) for p, e, d in self.files]
        self.files = []
        return rows


def make_sink(format: str, out_dir: Path, metadata: dict[str, str], layer_ids: list[int]) -> Sink:
    return ParquetSink(out_dir, metadata, layer_ids) if format == "parquet" else SafetensorsSink(out_dir)


def write_part(path: Path, files: list[tuple[str, Embeddings]], layer_ids: list[int],
               metadata: dict[str, str]) -> None:
    """Write pooled `Embeddings` [n_layers, n_windows, H] of several files as one parquet part, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_windows = [e.embeddings.shape[1] for _, e in files]
    columns = {
        "path": pa.array([p for (p, _), n in zip(files, n_windows) for _ in range(n)], pa.string()),
        "window": pa.array([i for n in n_windows for i in range(n)], pa.int32()),
        "start": pa.array(torch.cat([e.window_starts for _, e in files]).numpy(), pa.float64()),
    }
    for row, layer in enumerate(layer_ids):
        x = torch.cat([e.embeddings[row] for _, e in files])  # (sum n_windows, H)
        values = pa.array(x.float().contiguous().numpy().reshape(-1), pa.float32())
        columns[f"layer_{layer}"] = pa.FixedSizeListArray.from_arrays(values, x.shape[1])
    table = pa.table(columns).replace_schema_metadata(metadata)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)


def remove_orphan_parts(out_dir: Path, rows: dict[str, IndexRow]) -> None:
    """Delete parquet parts that no ok index row names (from a worker killed before it reported,
    or from an earlier run this one replaced), so the folder reads without duplicates."""
    named = {row.output for row in rows.values() if row.status == "ok"}
    for part in (out_dir / PARQUET_DIR).glob("part-*.parquet"):
        if f"{PARQUET_DIR}/{part.name}" not in named:
            part.unlink(missing_ok=True)


def read_parquet(out_dir: str | Path) -> "pa.Table":
    """The rows of a `--format parquet` run as one pyarrow table (schema in the module docstring).

    Reads the parts that index.jsonl names, keeping each file's rows from the part its row names,
    so a part left by a killed worker never duplicates rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    tables = []
    for part, paths in named_parts(out_dir).items():
        table = pq.read_table(part)
        tables.append(table.filter(pc.is_in(table["path"], value_set=pa.array(paths, pa.string()))))
    return pa.concat_tables(tables)


def named_parts(out_dir: str | Path) -> dict[Path, list[str]]:
    """The parquet parts index.jsonl names, each with the input paths whose rows to take from it."""
    out_dir = Path(out_dir)
    if not (out_dir / INDEX).is_file():
        raise FileNotFoundError(f"{out_dir / INDEX}: no such file (not a melos embed output folder)")
    parts: dict[Path, list[str]] = {}
    for row in read_index(out_dir / INDEX).values():
        if row.status == "ok" and row.output and row.output.startswith(f"{PARQUET_DIR}/"):
            parts.setdefault(out_dir / row.output, []).append(row.path)
    if not parts:
        raise FileNotFoundError(f"{out_dir / INDEX}: names no parquet part (was the run --format parquet?)")
    return dict(sorted(parts.items()))
