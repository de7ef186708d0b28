"""Rows for the index from a `melos embed` output folder: one layer, per track or per window.

Both formats melos embed writes are read:

- safetensors: `<relative path>.safetensors` per file (`embeddings` [n_layers, n_windows, H],
  `layers`, `window_starts`), listed by the folder's `index.jsonl`;
- parquet: `parquet/part-*.parquet`, one row per (file, window) with `path`, `window`, `start`
  and a `layer_<L>` column per hidden state; the schema metadata is the run's settings; each ok
  row of index.jsonl names the part that holds the file's rows.

Every vector is L2-normalised, so the index's cosine distance is one minus a dot product. A track
vector is the mean of the file's (un-normalised) window vectors, then normalised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors import safe_open

from ..embedding.store import INDEX, SUFFIX, Embeddings, read_index

LEVELS = ("track", "window")
PARQUET_DIR = "parquet"
PARQUET_BATCH_ROWS = 8192  # rows read from a parquet part at a time


@dataclass
class EmbedFolder:
    """A melos embed output folder, opened for one layer.

    Attributes:
        folder: the folder.
        format: "safetensors" or "parquet".
        files: safetensors: (source path, output file) per embedded file; parquet: part files.
        metadata: the embed run's metadata (model, sample_rate, window, hop, pool, ...).
        dim: H, the width of the layer.
        layer: the layer opened.
        layers: every layer embedded.
    """

    folder: Path
    format: str
    files: list[tuple[str, Path]]
    metadata: dict[str, str]
    dim: int
    layer: int = 0
    layers: tuple[int, ...] = ()


def default_layer(layers: list[int]) -> int:
    """The layer indexed when none is named: the middle of the embedded ones, the lower of two
    middles: layer 6 of MERT-95M's 13 hidden states or of `--layers 6,12`, the layer the README's
    examples index (the last layers of a masked-prediction encoder lean towards its pre-training
    targets; which layer retrieves best depends on the model and is worth checking with
    benchmarks/search_precision.py)."""
    layers = sorted(layers)
    return layers[(len(layers) - 1) // 2]


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows of `x` [N, H] scaled to unit L2 norm (a zero row stays zero), as float32."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def open_folder(folder: str | Path, layer: int | None = None) -> EmbedFolder:
    """Find what `folder` holds and check that `layer` (None: `default_layer`) is in it; errors
    are one line."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such embedding folder (expected melos embed output)")
    files = _embedded_files(folder)
    if not files:
        raise ValueError(f"{folder}: no embeddings here (no ok rows in {INDEX}, no *{SUFFIX}, "
                         f"no {PARQUET_DIR}/part-*.parquet)")
    first = files[0][1]
    if first.suffix == ".parquet":
        schema = pq.read_schema(first)
        metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        have = sorted(int(n[6:]) for n in schema.names if n.startswith("layer_") and n[6:].isdigit())
        layer = default_layer(have) if layer is None and have else layer
        column = f"layer_{layer}"
        if column not in schema.names:
            raise ValueError(f"{first}: layer {layer} was not embedded (layers here: {have})")
        return EmbedFolder(folder, "parquet", files, metadata, schema.field(column).type.list_size, layer,
                           tuple(have))
    with safe_open(first, framework="pt") as f:
        metadata = f.metadata() or {}
        layers = f.get_tensor("layers").tolist()
        dim = f.get_slice("embeddings").get_shape()[-1]
    layer = default_layer(layers) if layer is None else layer
    if layer not in layers:
        raise ValueError(f"{first}: layer {layer} was not embedded (layers here: {layers})")
    return EmbedFolder(folder, "safetensors", files, metadata, dim, layer, tuple(layers))


def _embedded_files(folder: Path) -> list[tuple[str, Path]]:
    """(source path, output file) per embedded file: a safetensors file, or the parquet part that
    holds the file's rows. index.jsonl decides when there is one (its last row per path wins, so a
    part left by a killed worker or an earlier attempt is never read twice); else the files there."""
    if (folder / INDEX).is_file():
        rows = [r for r in read_index(folder / INDEX).values() if r.status == "ok" and r.output]
        files = [(r.path, folder / r.output) for r in rows if r.output.endswith((SUFFIX, ".parquet"))]
        parquet = [f for f in files if f[1].suffix == ".parquet"]
        return [f for f in (parquet or files) if f[1].is_file()]
    parts = sorted((folder / PARQUET_DIR).glob("part-*.parquet"))
    if parts:
        return [(p, part) for part in parts
                for p in dict.fromkeys(pq.read_table(part, columns=["path"]).column("path").to_pylist())]
    return [(p.relative_to(folder).as_posix()[: -len(SUFFIX)], p) for p in sorted(folder.rglob(f"*{SUFFIX}"))]


def file_names(source: EmbedFolder) -> dict[str, str | None]:
    """Each embedded file's path -> the output name melos embed gave it (None for parquet, which
    records paths only)."""
    if source.format == "safetensors":
        return {path: file.relative_to(source.folder).as_posix()[: -len(SUFFIX)] for path, file in source.files}
    return dict.fromkeys(p for p, _ in source.files)


def window_schema(dim: int) -> pa.Schema:
    return pa.schema([("path", pa.string()), ("window", pa.int32()), ("start", pa.float64()),
                      ("vector", pa.list_(pa.float32(), dim))])


def track_schema(dim: int) -> pa.Schema:
    return pa.schema([("path", pa.string()), ("n_windows", pa.int32()), ("vector", pa.list_(pa.float32(), dim))])


def read_batches(source: EmbedFolder, layer: int, level: str, skip: set[str] = frozenset(),
                 batch_rows: int = 8192) -> Iterator[pa.RecordBatch]:
    """Rows of `source` for `layer` at `level` ("track" or "window"), in batches of about
    `batch_rows`; files whose path is in `skip` are left out. Memory stays bounded by a batch,
    except for track-level parquet input, whose per-file sums are kept until the end."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    read = _parquet_windows if source.format == "parquet" else _safetensors_windows
    chunks = read(source, layer, skip)
    if level == "track":
        chunks = _tracks(chunks, source.format == "parquet")
    schema = track_schema(source.dim) if level == "track" else window_schema(source.dim)
    pending: list[dict[str, np.ndarray]] = []
    n = 0
    for chunk in chunks:
        pending.append(chunk)
        n += len(chunk["path"])
        if n >= batch_rows:
            yield _batch(pending, schema)
            pending, n = [], 0
    if pending:
        yield _batch(pending, schema)


def _batch(chunks: list[dict[str, np.ndarray]], schema: pa.Schema) -> pa.RecordBatch:
    columns = {name: np.concatenate([c[name] for c in chunks]) for name in schema.names}
    dim = schema.field("vector").type.list_size
    vectors = normalise(columns.pop("vector")).reshape(-1)
    arrays = [pa.array(columns[name], type=schema.field(name).type) for name in schema.names[:-1]]
    return pa.RecordBatch.from_arrays([*arrays, pa.FixedSizeListArray.from_arrays(pa.array(vectors), dim)],
                                      schema=schema)


def _check_same_run(file: str, metadata: dict[str, str], first: dict[str, str]) -> None:
    for key in ("model", "window", "hop"):
        if metadata.get(key) != first.get(key):
            raise ValueError(f"{file}: {key} {metadata.get(key)!r} differs from the folder's first file "
                             f"({first.get(key)!r}); index one embedding run at a time")


def _safetensors_windows(source: EmbedFolder, layer: int, skip: set[str]) -> Iterator[dict[str, np.ndarray]]:
    """One chunk per file: its un-normalised window vectors [n_windows, H]."""
    for path, file in source.files:
        if path in skip:
            continue
        emb = Embeddings.load(file)
        _check_same_run(str(file), emb.metadata, source.metadata)
        layers = emb.layers.tolist()
        if layer not in layers:
            raise ValueError(f"{file}: layer {layer} was not embedded (layers here: {layers})")
        x = emb.embeddings[layers.index(layer)]
        if x.shape[-1] != source.dim:
            raise ValueError(f"{file}: dimension {x.shape[-1]} differs from the folder's {source.dim}")
        if emb.metadata.get("pool") == "none":  # frames: pool each window's frames as melos embed does
            x = torch.stack([w.mean(0) for w in torch.split(x, emb.window_frames.tolist())])
        n = x.shape[0]
        yield {"path": np.array([path] * n, dtype=object), "window": np.arange(n, dtype=np.int32),
               "start": emb.window_starts.numpy().astype(np.float64), "vector": x.double().numpy()}


def _parquet_windows(source: EmbedFolder, layer: int, skip: set[str]) -> Iterator[dict[str, np.ndarray]]:
    """One chunk per parquet record batch (rows of several files), only the files `source` names
    in each part."""
    column = f"layer_{layer}"
    parts: dict[Path, set[str]] = {}
    for path, part in source.files:
        if path not in skip:
            parts.setdefault(part, set()).add(path)
    for file, wanted in parts.items():
        f = pq.ParquetFile(file)
        metadata = {k.decode(): v.decode() for k, v in (f.schema_arrow.metadata or {}).items()}
        _check_same_run(str(file), metadata, source.metadata)
        if column not in f.schema_arrow.names:
            raise ValueError(f"{file}: layer {layer} was not embedded")
        if f.schema_arrow.field(column).type.list_size != source.dim:
            raise ValueError(f"{file}: dimension {f.schema_arrow.field(column).type.list_size} differs from "
                             f"the folder's {source.dim}")
        for batch in f.iter_batches(PARQUET_BATCH_ROWS, columns=["path", "window", "start", column]):
            paths = np.array(batch.column("path").to_pylist(), dtype=object)
            keep = np.array([p in wanted for p in paths], dtype=bool)
            if not keep.any():
                continue
            vectors = batch.column(column).flatten().to_numpy(zero_copy_only=False).reshape(len(paths), source.dim)
            yield {"path": paths[keep], "window": batch.column("window").to_numpy()[keep].astype(np.int32),
                   "start": batch.column("start").to_numpy()[keep].astype(np.float64),
                   "vector": vectors[keep].astype(np.float64)}


def _tracks(chunks: Iterator[dict[str, np.ndarray]], scattered: bool) -> Iterator[dict[str, np.ndarray]]:
    """Window chunks -> one mean vector per file. Safetensors chunks are whole files; parquet
    rows of a file may be spread over batches and parts, so their sums are kept to the end."""
    if not scattered:
        for c in chunks:
            yield {"path": c["path"][:1], "n_windows": np.array([len(c["path"])], dtype=np.int32),
                   "vector": c["vector"].mean(0, keepdims=True)}
        return
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for c in chunks:
        paths, first, inverse = np.unique(c["path"], return_index=True, return_inverse=True)
        batch_sums = np.zeros((len(paths), c["vector"].shape[1]))
        np.add.at(batch_sums, inverse, c["vector"])
        batch_counts = np.bincount(inverse, minlength=len(paths))
        for i in np.argsort(first):  # files in the order they first appear
            sums[paths[i]] = sums.get(paths[i], 0.0) + batch_sums[i]
            counts[paths[i]] = counts.get(paths[i], 0) + int(batch_counts[i])
    for path, total in sums.items():
        yield {"path": np.array([path], dtype=object), "n_windows": np.array([counts[path]], dtype=np.int32),
               "vector": (total / counts[path])[None]}
