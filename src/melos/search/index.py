"""The on-disk vector index: a LanceDB table of unit vectors and metadata, the search engine's
files beside it, and `melos-index.json`.

    INDEX/
      melos-index.json   model, layer, level, dim, window settings, rows, ANN settings (IndexInfo)
      vectors.lance/     the LanceDB table: row, path, window + start (or n_windows), manifest
                         columns (filtered with SQL)
      vectors.f32        the unit vectors, row by row, memory-mapped for search (engine.py)
      ivfpq.faiss        the FAISS inverted file of 4-bit PQ codes, from ANN_MIN_ROWS rows on

A query is a BLAS product over the memory-mapped vectors (exact) or an inverted-file search
re-ranked with them (approximate); a `--where` filter is evaluated by LanceDB first and restricts the
search to the rows that pass, so a filtered query returns k results whenever k rows pass. The
matched rows' metadata is then read from the table by row number. The score is the cosine
similarity in [-1, 1]; the distance is 1 - score.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..utils.atomic import atomic_dir, write_text
from . import engine
from .columns import ManifestColumns, read_columns
from .vectors import LEVELS, default_layer, file_names, open_folder, read_batches

os.environ.setdefault("LANCEDB_LOG", "error")  # else lance logs a warning for every table it creates

INFO = "melos-index.json"
TABLE = "vectors"
VERSION = 3  # 1: LanceDB's own IVF indexes; 2: vectors also in the table, HNSW graph (rebuild either)
ANN_CHOICES = ("auto", "none", "ivf")


@dataclass
class IndexInfo:
    """What an index holds and how its vectors were made; queries must be made the same way.

    Attributes:
        model: the encoder melos embed recorded (a preset, a checkpoint folder or a hub id).
        layer: the hidden state indexed.
        level: "track" (a file's windows averaged) or "window" (one row per window).
        dim: vector width H.
        window, hop: seconds, as embedded.
        embed: the embed run's metadata (sample rate, pooling, ...).
        ann: "auto" (the inverted file from engine.ANN_MIN_ROWS rows), "none" (always exact) or
            "ivf" (from engine.MIN_TRAIN_ROWS rows, the fewest its codebooks train on).
        ann_built: the inverted file's settings once built (`engine.ann_settings`), else None.
        rows: rows in the table, the vectors file and the inverted file.
    """

    model: str
    layer: int
    level: str
    dim: int
    window: float
    hop: float
    embed: dict[str, str] = field(default_factory=dict)
    ann: str = "auto"
    ann_built: dict | None = None
    metric: str = "cosine"
    rows: int = 0
    version: int = VERSION

    def save(self, folder: Path) -> None:
        write_text(folder / INFO, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "IndexInfo":
        path = folder / INFO
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: not a melos index (no {INFO}); make one with `melos index build`")
        try:
            info = cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{path}: unreadable ({err}); rebuild the index with `melos index build`") from None
        if info.version != VERSION:
            raise ValueError(f"{folder}: index format {info.version}, this melos reads {VERSION}; rebuild it with "
                             f"`melos index build`")
        return info


@dataclass
class AddReport:
    """What a build or an add did: rows written, files skipped as already indexed, manifest join.
    `incremental` is True when a build found the index and added only the new files."""

    n_rows: int = 0
    n_files: int = 0
    n_skipped_files: int = 0
    n_unmatched_files: int = 0
    dropped_columns: list[str] = field(default_factory=list)
    incremental: bool = False


@dataclass
class Hit:
    """One search result. `start`, `end` (seconds) and `window` are None for a track-level index."""

    path: str
    score: float
    start: float | None
    window: int | None
    columns: dict
    end: float | None = None

    @property
    def distance(self) -> float:
        """Cosine distance, 1 - score (0 = same direction, 2 = opposite)."""
        return 1.0 - self.score


def _lancedb():
    import lancedb  # imported lazily: it takes a second, and `melos --help` should not

    return lancedb


class VectorIndex:
    """An index folder, opened. Build with `create` (or `build`, which adds to an existing index),
    open with `open`, then `add` and `search`."""

    def __init__(self, folder: Path, info: IndexInfo):
        self.folder, self.info = folder, info
        self._metadata: pa.Table | None = None
        try:
            self.table = _lancedb().connect(folder).open_table(TABLE)
            n = self.table.count_rows()
        except Exception as err:  # lance raises assorted errors for a missing or damaged table
            raise ValueError(f"{folder / (TABLE + '.lance')}: unreadable LanceDB table "
                             f"({str(err).strip().splitlines()[0][:200]}); rebuild with `melos index build`") from None
        if n != info.rows:
            raise ValueError(f"{folder}: the table holds {n} rows, {INFO} {info.rows}; the index is corrupt "
                             f"(an interrupted add?), rebuild it with `melos index build`")
        self.vectors = engine.open_vectors(folder, info.dim, n)
        self.ann = engine.load_ann(folder, n) if info.ann_built else None

    @classmethod
    def open(cls, folder: str | Path) -> "VectorIndex":
        folder = Path(folder).expanduser()
        return cls(folder, IndexInfo.load(folder))

    @classmethod
    def build(cls, folder: str | Path, emb_dir: str | Path, layer: int | None = None, level: str = "track",
              manifest: str | Path | None = None, ann: str = "auto",
              rebuild: bool = False) -> tuple["VectorIndex", AddReport]:
        """`create`, or, when `folder` already indexes this layer of the same embedding run and
        every file it holds is still in `emb_dir`, `add` only the new files (the same rows a
        full rebuild would give). `rebuild` always starts over."""
        folder = Path(folder).expanduser()
        source = open_folder(emb_dir, layer)
        layer = source.layer
        if not rebuild and (folder / INFO).is_file():
            try:
                index = cls.open(folder)
            except (OSError, ValueError):
                index = None  # damaged or older: rebuilt below
            if index is not None and index._same_run(source, layer, level, ann) and \
                    index.paths() <= set(file_names(source)):
                report = index.add(emb_dir, manifest)
                report.incremental = True
                return index, report
        return cls.create(folder, emb_dir, layer, level, manifest, ann)

    @classmethod
    def create(cls, folder: str | Path, emb_dir: str | Path, layer: int | None = None, level: str = "track",
               manifest: str | Path | None = None, ann: str = "auto") -> tuple["VectorIndex", AddReport]:
        """Index layer `layer` (None: `vectors.default_layer`) of the embeddings in `emb_dir` into
        a new `folder` (replaced atomically)."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if ann not in ANN_CHOICES:
            raise ValueError(f"ann must be one of {ANN_CHOICES}, got {ann!r}")
        folder = Path(folder).expanduser()
        if folder.exists() and not (folder / INFO).is_file() and (folder.is_file() or any(folder.iterdir())):
            raise ValueError(f"{folder}: exists and is not a melos index; refusing to replace it")
        source = open_folder(emb_dir, layer)
        meta = source.metadata
        window = float(meta.get("window", "nan"))
        info = IndexInfo(model_source(meta.get("model", "unknown")), source.layer, level, source.dim, window,
                         float(meta.get("hop", window)), meta, ann)
        columns = read_columns(manifest) if manifest else None
        names = file_names(source)
        report = _plan(names, columns, manifest, emb_dir)
        with atomic_dir(folder) as tmp:
            batches = _rows(_with_columns(read_batches(source, info.layer, level), names, columns, report), tmp, 0)
            first = next(batches, None)
            if first is None:
                raise ValueError(f"{emb_dir}: no embeddings to index")
            reader = pa.RecordBatchReader.from_batches(first.schema, _chain(first, batches))
            table = _lancedb().connect(tmp).create_table(TABLE, reader)
            info.rows = table.count_rows()
            info.ann_built = _maybe_build_ann(tmp, info)
            info.save(tmp)
        return cls(folder, info), report

    def _same_run(self, source, layer: int, level: str, ann: str) -> bool:
        i = self.info
        return (layer, level, ann, source.dim) == (i.layer, i.level, i.ann, i.dim) and \
            model_source(source.metadata.get("model", "unknown")) == i.model and \
            str(float(source.metadata.get("window", "nan"))) == str(i.window)

    def __len__(self) -> int:
        return self.info.rows

    def paths(self) -> set[str]:
        return set(self.table.search().select(["path"]).limit(None).to_arrow().column("path").to_pylist())

    def add(self, emb_dir: str | Path, manifest: str | Path | None = None) -> AddReport:
        """Append the files of `emb_dir` that the index does not hold yet (by path): their vectors
        to the vectors file and the inverted file (`engine.grow_ann`; one is built once the index
        reaches engine.ANN_MIN_ROWS), their rows to the table."""
        source = open_folder(emb_dir, self.info.layer)
        for key, want in (("model", self.info.model), ("window", str(self.info.window)), ("hop", str(self.info.hop))):
            have = source.metadata.get(key)
            if have is not None:
                have = model_source(have) if key == "model" else str(float(have))
            if have != want:
                raise ValueError(f"{emb_dir}: {key} {have!r} differs from the index's {want!r}")
        if source.dim != self.info.dim:
            raise ValueError(f"{emb_dir}: dimension {source.dim} differs from the index's {self.info.dim}")
        columns = read_columns(manifest) if manifest else None
        indexed = self.paths()
        every = file_names(source)
        names = {p: n for p, n in every.items() if p not in indexed}
        report = _plan(names, columns, manifest, emb_dir)
        report.n_skipped_files = len(every) - len(names)
        if not names:
            return report
        n = self.info.rows
        with open(self.folder / engine.VECTORS, "r+b") as f:
            f.truncate(4 * self.info.dim * n)  # drop what an interrupted add may have left
        schema = self.table.schema
        batches = _with_columns(read_batches(source, self.info.layer, self.info.level, skip=indexed), names,
                                columns, report)
        self.table.add(pa.RecordBatchReader.from_batches(
            schema, _rows((_conform(b, schema, report) for b in batches), self.folder, n)))
        rows = self.table.count_rows()
        self._metadata = None
        self.vectors = engine.open_vectors(self.folder, self.info.dim, rows)
        self.info.rows = rows
        if self.ann is not None:
            self.ann, self.info.ann_built = engine.grow_ann(self.ann, self.info.ann_built, self.vectors, n)
            engine.save_ann(self.ann, self.folder)
        else:
            self.info.ann_built = _maybe_build_ann(self.folder, self.info)
            self.ann = engine.load_ann(self.folder, rows) if self.info.ann_built else None
        self.info.save(self.folder)
        return report

    def rows_where(self, where: str) -> np.ndarray:
        """Row numbers passing the SQL filter `where`, ascending."""
        try:
            table = self.table.search().where(where).select(["row"]).limit(None).to_arrow()
        except Exception as err:  # lance reports a bad filter as a generic error with a long plan dump
            raise ValueError(f"--where {where!r}: {str(err).splitlines()[0][:300]}") from None
        return np.sort(table.column("row").to_numpy().astype(np.int64))

    def search(self, vector: np.ndarray, k: int = 10, where: str | None = None, exact: bool = False,
               probes: int | None = None, refine: int = engine.REFINE) -> list[Hit]:
        """The `k` rows most cosine-similar to `vector` [H] (normalised here), best first.

        Args:
            where: an SQL filter on the metadata columns, e.g. "culture = 'makam'"; evaluated
                first, the search then runs over the rows that pass, so `k` rows come back
                whenever `k` rows pass (exactly when fewer than engine.FILTER_ANN_FRACTION of
                the rows pass, else through the inverted file with the others masked out).
            exact: scan every vector even when an inverted file exists.
            probes, refine: lists scanned (None: the index's default, `engine.ann_settings`)
                and candidates per result re-ranked with the float32 vectors.
        """
        vector = np.asarray(vector)
        if vector.ndim != 1:
            raise ValueError(f"search takes one vector [H], got shape {vector.shape}; use search_many for [n, H]")
        return self.search_many(vector[None], k, where, exact, probes, refine)[0]

    def search_many(self, vectors: np.ndarray, k: int = 10, where: str | None = None, exact: bool = False,
                    probes: int | None = None, refine: int = engine.REFINE) -> list[list[Hit]]:
        """`search` for each row of `vectors` [n, H] at once: one matrix product (exact) or one
        FAISS call over all of them (approximate), so a batch costs less than n searches."""
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.info.dim:
            raise ValueError(f"query has dimension {vectors.shape[-1] if vectors.ndim else 1}, the index "
                             f"{self.info.dim} (layer {self.info.layer} of {self.info.model})")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        queries = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        rows = self.rows_where(where) if where else None
        if rows is not None and len(rows) == 0:
            return [[] for _ in queries]
        narrow = rows is not None and len(rows) < engine.FILTER_ANN_FRACTION * len(self.vectors)
        if exact or self.ann is None or narrow:
            matches = engine.exact(self.vectors, queries, k, rows)
        else:
            matches = engine.approximate(self.ann, self.vectors, queries, k,
                                         probes or self.info.ann_built["probes"], refine, rows)
        return [self._hits(m) for m in matches]

    def metadata(self) -> pa.Table:
        """Every column but the vectors, in row order; read from the table once, then kept (a few
        dozen bytes a row), so a result's metadata costs an in-memory take, not a disk read."""
        if self._metadata is None:
            table = self.table.search().limit(None).to_arrow().sort_by("row")
            if not np.array_equal(table.column("row").to_numpy(), np.arange(self.info.rows)):
                raise ValueError(f"{self.folder}: the table's row numbers are not 0..{self.info.rows - 1}; the "
                                 f"index is corrupt, rebuild it with `melos index build`")
            self._metadata = table.drop_columns(["row"])
        return self._metadata

    def _hits(self, match: engine.Match) -> list[Hit]:
        """The table rows of `match`, in its order, as hits."""
        if not len(match.rows):
            return []
        window = self.info.level == "window"
        hits = []
        for r, score in zip(self.metadata().take(pa.array(match.rows)).to_pylist(), match.scores.tolist()):
            start = r.pop("start") if window else None
            hits.append(Hit(r.pop("path"), float(score), start, r.pop("window") if window else None, r,
                            None if start is None else start + self.info.window))
        return hits


def model_source(model: str) -> str:
    """The model as melos embed recorded it, a relative checkpoint path made absolute (so audio
    queries work from any folder)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _rows(batches: Iterator[pa.RecordBatch], folder: Path, start: int) -> Iterator[pa.RecordBatch]:
    """Each batch with its row numbers (from `start`) as a first `row` column and without its
    vectors, which go to the folder's vectors file on the way."""
    n = start
    for batch in batches:
        if "row" in batch.schema.names:
            batch = batch.drop_columns(["row"])
        vectors = batch.column("vector")
        engine.append_vectors(folder, vectors.flatten().to_numpy(zero_copy_only=False).reshape(len(batch), -1))
        batch = batch.drop_columns(["vector"])
        rows = pa.array(np.arange(n, n + len(batch), dtype=np.int64))
        n += len(batch)
        yield pa.RecordBatch.from_arrays([rows, *batch.columns],
                                         schema=pa.schema([pa.field("row", pa.int64()), *batch.schema]))


def _plan(names: dict[str, str | None], columns: ManifestColumns | None, manifest, emb_dir) -> AddReport:
    """The report before any row is written; refuses a manifest that matches none of the files."""
    report = AddReport(n_files=len(names))
    if columns is not None:
        report.n_unmatched_files = sum(columns.lookup(p, n) is None for p, n in names.items())
        if names and report.n_unmatched_files == len(names):
            raise ValueError(f"{manifest}: no row matches a file of {emb_dir} (joined on the audio path; "
                             f"relative manifest paths are taken against the manifest's folder)")
        report.dropped_columns = list(columns.skipped)
    return report


def _with_columns(batches: Iterator[pa.RecordBatch], names: dict[str, str | None],
                  columns: ManifestColumns | None, report: AddReport) -> Iterator[pa.RecordBatch]:
    """Attach the manifest's columns to each batch and count the rows."""
    for batch in batches:
        report.n_rows += batch.num_rows
        yield batch if columns is None else columns.attach(batch, names)


def _conform(batch: pa.RecordBatch, schema: pa.Schema, report: AddReport) -> pa.RecordBatch:
    """`batch` with the table's columns but `row` (added by `_rows`), then its vectors: missing
    columns null, extra ones dropped (and reported)."""
    for name in batch.schema.names:
        if name not in schema.names and name != "vector" and name not in report.dropped_columns:
            report.dropped_columns.append(name)
    arrays, fields = [], []
    for f in schema:
        if f.name == "row":
            continue
        fields.append(f)
        if f.name not in batch.schema.names:
            arrays.append(pa.nulls(batch.num_rows, f.type))
            continue
        try:
            arrays.append(batch.column(f.name).cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ValueError(f"manifest column {f.name!r} has type {batch.schema.field(f.name).type}, "
                             f"the index's is {f.type}") from None
    arrays.append(batch.column("vector"))
    fields.append(batch.schema.field("vector"))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _maybe_build_ann(folder: Path, info: IndexInfo) -> dict | None:
    """Build the inverted file the settings call for at the index's size; its settings, or None."""
    if info.ann == "none" or (info.ann == "auto" and info.rows < engine.ANN_MIN_ROWS) or \
            info.rows < engine.MIN_TRAIN_ROWS:
        return None
    index, settings = engine.build_ann(engine.open_vectors(folder, info.dim, info.rows))
    engine.save_ann(index, folder)
    return settings
