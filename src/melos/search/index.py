"""The on-disk vector index: a LanceDB table of unit vectors plus `melos-index.json`.

    INDEX/
      melos-index.json   model, layer, level, dim, window settings, metric, ANN settings (IndexInfo)
      vectors.lance/     the LanceDB table: path, window + start (or n_windows), vector, manifest columns

LanceDB stores the table in columnar files and searches it from disk, so an index can be larger
than memory. Small tables are searched exactly (a flat scan); from ANN_MIN_ROWS rows on, an
IVF_HNSW_SQ index is built (sqrt(rows) partitions, an HNSW graph of 8-bit vectors in each); a
query searches a quarter of the partitions (at least MIN_PROBES) and re-ranks `REFINE_FACTOR x k`
candidates with the full vectors. These settings come from benchmarks/search_index.py (recall@10
0.98 against exact search at 10^5 and 10^6 generated 768-d vectors, docs/benchmarks.md). The
score is the cosine similarity, 1 - LanceDB's cosine distance, in [-1, 1].
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..utils.atomic import atomic_dir, write_text
from .columns import ManifestColumns, read_columns
from .vectors import LEVELS, file_names, open_folder, read_batches

os.environ.setdefault("LANCEDB_LOG", "error")  # else lance logs a warning for every table it creates

INFO = "melos-index.json"
TABLE = "vectors"
ANN_MIN_ROWS = 50_000  # a flat scan of 50,000 x 768 takes a few hundred ms on 2 cores
ANN_TYPES = ("IVF_HNSW_SQ", "IVF_PQ")
# partitions a query searches: recall@10 0.98 with 128 of 316 at 10^5 rows, 256 of 1000 at 10^6
PROBE_FRACTION, MIN_PROBES = 0.25, 128
REFINE_FACTOR = 10


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
        ann: "auto", "none" or an index type in ANN_TYPES.
        ann_built: the ANN index's type, settings and default `nprobes` once built, else None.
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
    version: int = 1

    def save(self, folder: Path) -> None:
        write_text(folder / INFO, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "IndexInfo":
        path = folder / INFO
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: not a melos index (no {INFO}); make one with `melos index build`")
        return cls(**json.loads(path.read_text()))


@dataclass
class AddReport:
    """What a build or an add did: rows written, files skipped as already indexed, manifest join."""

    n_rows: int = 0
    n_files: int = 0
    n_skipped_files: int = 0
    n_unmatched_files: int = 0
    dropped_columns: list[str] = field(default_factory=list)


@dataclass
class Hit:
    """One search result. `start` and `window` are None for a track-level index."""

    path: str
    score: float
    start: float | None
    window: int | None
    columns: dict


def _lancedb():
    import lancedb  # imported lazily: it takes a second, and `melos --help` should not

    return lancedb


class VectorIndex:
    """An index folder, opened. Build with `create`, open with `open`, then `add` and `search`."""

    def __init__(self, folder: Path, info: IndexInfo):
        self.folder, self.info = folder, info
        self.table = _lancedb().connect(folder).open_table(TABLE)

    @classmethod
    def open(cls, folder: str | Path) -> "VectorIndex":
        folder = Path(folder).expanduser()
        return cls(folder, IndexInfo.load(folder))

    @classmethod
    def create(cls, folder: str | Path, emb_dir: str | Path, layer: int, level: str = "track",
               manifest: str | Path | None = None, ann: str = "auto") -> tuple["VectorIndex", AddReport]:
        """Index layer `layer` of the embeddings in `emb_dir` into a new `folder` (replaced atomically)."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if ann not in ("auto", "none", *ANN_TYPES):
            raise ValueError(f"ann must be auto, none or one of {ANN_TYPES}, got {ann!r}")
        folder = Path(folder).expanduser()
        if folder.exists() and not (folder / INFO).is_file() and (folder.is_file() or any(folder.iterdir())):
            raise ValueError(f"{folder}: exists and is not a melos index; refusing to replace it")
        source = open_folder(emb_dir, layer)
        meta = source.metadata
        window = float(meta.get("window", "nan"))
        info = IndexInfo(model_source(meta.get("model", "unknown")), layer, level, source.dim, window,
                         float(meta.get("hop", window)), meta, ann)
        columns = read_columns(manifest) if manifest else None
        names = file_names(source)
        report = _plan(names, columns, manifest, emb_dir)
        with atomic_dir(folder) as tmp:
            batches = _with_columns(read_batches(source, layer, level), names, columns, report)
            first = next(batches, None)
            if first is None:
                raise ValueError(f"{emb_dir}: no embeddings to index")
            reader = pa.RecordBatchReader.from_batches(first.schema, _chain(first, batches))
            table = _lancedb().connect(tmp).create_table(TABLE, reader)
            info.ann_built = _maybe_build_ann(table, info)
            info.save(tmp)
        return cls(folder, info), report

    def __len__(self) -> int:
        return self.table.count_rows()

    def paths(self) -> set[str]:
        return set(self.table.search().select(["path"]).limit(None).to_arrow().column("path").to_pylist())

    def add(self, emb_dir: str | Path, manifest: str | Path | None = None) -> AddReport:
        """Append the files of `emb_dir` that the index does not hold yet (by path)."""
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
        if names:
            schema = self.table.schema
            batches = _with_columns(read_batches(source, self.info.layer, self.info.level, skip=indexed), names,
                                    columns, report)
            self.table.add(pa.RecordBatchReader.from_batches(schema, (_conform(b, schema, report) for b in batches)))
            if self.info.ann_built:
                self.table.optimize()  # puts the new rows into the ANN index's partitions
            else:
                self.info.ann_built = _maybe_build_ann(self.table, self.info)
            self.info.save(self.folder)
        return report

    def search(self, vector: np.ndarray, k: int = 10, where: str | None = None, exact: bool = False,
               nprobes: int | None = None, refine_factor: int | None = REFINE_FACTOR,
               ef: int | None = None) -> list[Hit]:
        """The `k` rows most cosine-similar to `vector` [H] (normalised here), best first.

        Args:
            where: an SQL filter on the metadata columns, e.g. "culture = 'makam'"; applied
                before the vector search, so an exact search returns `k` rows whenever `k` rows
                pass it (an ANN search may return fewer under a narrow filter).
            exact: scan every vector even when an ANN index exists.
            nprobes, refine_factor: ANN settings (ignored by a flat scan): partitions searched
                (None: the index's default, a quarter of them, at least MIN_PROBES), and
                candidates re-ranked with the full vectors per result (None: none).
            ef: candidates an HNSW graph search keeps (None: LanceDB's default).
        """
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vector.shape[0] != self.info.dim:
            raise ValueError(f"query has dimension {vector.shape[0]}, the index {self.info.dim} "
                             f"(layer {self.info.layer} of {self.info.model})")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        norm = np.linalg.norm(vector)
        vector = (vector / (norm if norm > 0 else 1.0)).astype(np.float32)
        names = [n for n in self.table.schema.names if n != "vector"]
        query = self.table.search(vector, vector_column_name="vector").distance_type("cosine").limit(k)
        query = query.select([*names, "_distance"])
        if where:
            query = query.where(where, prefilter=True)
        if exact or not self.info.ann_built:
            query = query.bypass_vector_index()
        else:
            query = query.nprobes(nprobes or self.info.ann_built["nprobes"])
            if ef:
                query = query.ef(ef)
            if refine_factor:
                query = query.refine_factor(refine_factor)
        try:
            rows = query.to_arrow().to_pylist()
        except Exception as err:  # lance reports a bad filter as a generic error with a long plan dump
            if where:
                raise ValueError(f"--where {where!r}: {str(err).splitlines()[0][:300]}") from None
            raise
        window = self.info.level == "window"
        return [Hit(r.pop("path"), 1.0 - r.pop("_distance"), r.pop("start") if window else None,
                    r.pop("window") if window else None, r) for r in rows]


def model_source(model: str) -> str:
    """The model as melos embed recorded it, a relative checkpoint path made absolute (so audio
    queries work from any folder)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


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
    """`batch` with the table's columns: missing ones null, extra ones dropped (and reported)."""
    for name in batch.schema.names:
        if name not in schema.names and name not in report.dropped_columns:
            report.dropped_columns.append(name)
    arrays = []
    for f in schema:
        if f.name not in batch.schema.names:
            arrays.append(pa.nulls(batch.num_rows, f.type))
            continue
        try:
            arrays.append(batch.column(f.name).cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ValueError(f"manifest column {f.name!r} has type {batch.schema.field(f.name).type}, "
                             f"the index's is {f.type}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _maybe_build_ann(table, info: IndexInfo) -> dict | None:
    """Build the ANN index the settings call for at the table's size; its settings, or None."""
    n = table.count_rows()
    if info.ann == "none" or (info.ann == "auto" and n < ANN_MIN_ROWS):
        return None
    return build_ann(table, ANN_TYPES[0] if info.ann == "auto" else info.ann, info.dim)


def build_ann(table, kind: str, dim: int, num_partitions: int | None = None,
              num_sub_vectors: int | None = None) -> dict:
    """Build (or replace) an ANN index of type `kind` over the table's vectors; returns its settings.

    Partitions default to sqrt(rows) (about sqrt(rows) vectors each); PQ sub-vectors to one per
    8 dimensions (96 bytes a vector at width 768)."""
    from lancedb.index import IvfHnswSq, IvfPq

    n = table.count_rows()
    settings = {"index_type": kind, "num_partitions": num_partitions or max(1, round(math.sqrt(n)))}
    if kind == "IVF_PQ":
        settings["num_sub_vectors"] = num_sub_vectors or _sub_vectors(dim)
        config = IvfPq(distance_type="cosine", num_partitions=settings["num_partitions"],
                       num_sub_vectors=settings["num_sub_vectors"])
    elif kind == "IVF_HNSW_SQ":
        config = IvfHnswSq(distance_type="cosine", num_partitions=settings["num_partitions"])
    else:
        raise ValueError(f"unknown ANN index type {kind!r} (one of {ANN_TYPES})")
    table.create_index("vector", config=config)
    partitions = settings["num_partitions"]
    nprobes = min(partitions, max(MIN_PROBES, math.ceil(PROBE_FRACTION * partitions)))
    return {**settings, "rows": n, "nprobes": nprobes}


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors of 8 dimensions where the width allows (768 -> 96), else the largest divisor <= dim / 8."""
    for n in range(max(1, dim // 8), 0, -1):
        if dim % n == 0:
            return n
    return 1
