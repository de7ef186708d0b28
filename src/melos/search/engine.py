"""The search engine beside the LanceDB table: the unit vectors as one raw float32 file, searched
exactly with a BLAS matrix-vector product, and from ANN_MIN_ROWS rows on a FAISS HNSW graph over
8-bit scalar-quantised copies whose candidates are re-ranked with the float32 vectors.

    INDEX/vectors.f32   [rows, dim] float32, row r = the table row whose `row` column is r
    INDEX/hnsw.faiss    the FAISS index (HNSW32 over SQ8 codes, inner product), when built

The vectors file is memory-mapped, so opening an index reads nothing up front. Rows are only
ever appended (`melos index build` on a grown folder, `melos index add`): the vectors file grows
at its end and the graph takes the new rows with `add`, so no part is rebuilt.

The settings come from benchmarks/search_index.py (docs/benchmarks.md): on 10^5 generated
768-d vectors (a hard set: clusters buried in isotropic noise), HNSW32,SQ8 with EF_SEARCH 768
candidates, REFINE x k of them re-ranked exactly, had recall@10 0.966 against exact search
(ef 256: 0.912 at 1.1 ms a query on one core, loaded machine); FAISS's own HNSW32,SQ8 and
HNSW32,Flat and hnswlib gave the same recall at the same ef. The exact scan took 0.88x numpy's time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VECTORS = "vectors.f32"
ANN = "hnsw.faiss"
ANN_MIN_ROWS = 50_000  # below this an exact scan costs under ~20 ms at width 768
HNSW_M = 32  # graph neighbours per vector
EF_CONSTRUCTION = 80  # candidates kept while inserting a vector
EF_SEARCH = 768  # candidates kept while searching: recall@10 >= 0.95 at 10^5 x 768 (benchmark)
REFINE = 4  # candidates per result re-ranked with the float32 vectors
FILTER_ANN_FRACTION = 0.1  # a filter passing fewer rows than this is searched exactly over them
ADD_BATCH = 50_000  # rows appended to the graph at a time (bounds memory)


def _faiss():
    import faiss  # imported lazily: `melos --help` should not load it

    return faiss


@dataclass
class Match:
    """Row numbers and cosine similarities of one query's results, best first."""

    rows: np.ndarray
    scores: np.ndarray


def append_vectors(folder: Path, x: np.ndarray) -> None:
    """Append unit vectors [n, dim] to the folder's vectors file, flushed to disk."""
    with open(folder / VECTORS, "ab") as f:
        f.write(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        f.flush()
        os.fsync(f.fileno())


def open_vectors(folder: Path, dim: int, rows: int) -> np.ndarray:
    """The first `rows` vectors of the folder's vectors file, memory-mapped [rows, dim]."""
    path = folder / VECTORS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; the index is incomplete, rebuild it with `melos index build`")
    have = path.stat().st_size // (4 * dim)
    if have < rows:
        raise ValueError(f"{path}: holds {have} vectors, the index {rows}; the index is corrupt, rebuild it "
                         f"with `melos index build`")
    if rows == 0:
        return np.zeros((0, dim), np.float32)
    return np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))


def build_hnsw(vectors: np.ndarray, start: int = 0, index=None):
    """An HNSW32,SQ8 index over `vectors[start:]` appended to `index` (a new one when None)."""
    faiss = _faiss()
    dim = vectors.shape[1]
    if index is None:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        # unit vectors: every coordinate lies in [-1, 1], so the quantiser's range needs no training data
        index.train(np.array([[-1.0] * dim, [1.0] * dim], np.float32))
    for i in range(start, len(vectors), ADD_BATCH):
        index.add(np.ascontiguousarray(vectors[i:i + ADD_BATCH]))
    return index


def save_hnsw(index, folder: Path) -> None:
    """Write the FAISS index atomically (temporary file, then rename)."""
    tmp = folder / f".{ANN}.tmp"
    _faiss().write_index(index, str(tmp))
    os.replace(tmp, folder / ANN)


def load_hnsw(folder: Path, rows: int):
    path = folder / ANN
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; the index is incomplete, rebuild it with `melos index build`")
    try:
        index = _faiss().read_index(str(path))
    except RuntimeError as err:
        raise ValueError(f"{path}: unreadable ({str(err).strip().splitlines()[-1][:200]}); rebuild it with "
                         f"`melos index build`") from None
    if index.ntotal != rows:
        raise ValueError(f"{path}: holds {index.ntotal} vectors, the index {rows}; rebuild it with `melos index build`")
    return index


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest scores, largest first (ties by position)."""
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


def exact(vectors: np.ndarray, q: np.ndarray, k: int, rows: np.ndarray | None = None) -> Match:
    """Exact cosine top-k of unit query `q` over all vectors, or over `rows` only."""
    if rows is None:
        scores = vectors @ q
        best = top_k(scores, k)
        return Match(best.astype(np.int64), scores[best])
    scores = vectors[np.sort(rows)] @ q if len(rows) else np.zeros(0, np.float32)
    ordered = np.sort(rows)
    best = top_k(scores, k)
    return Match(ordered[best].astype(np.int64), scores[best])


def approximate(index, vectors: np.ndarray, q: np.ndarray, k: int, ef: int | None = None,
                refine: int = REFINE, rows: np.ndarray | None = None) -> Match:
    """HNSW candidates (restricted to `rows` when given) re-ranked exactly; None-free: an
    answer with fewer than min(k, len(rows)) results falls back to an exact scan of `rows`."""
    faiss = _faiss()
    n_cand = max(k * refine, k)
    ef = max(ef or EF_SEARCH, n_cand)
    params = faiss.SearchParametersHNSW()
    selector = None
    if rows is not None:
        fraction = len(rows) / max(1, len(vectors))
        ef = int(ef / max(fraction, FILTER_ANN_FRACTION))  # a filter thins the graph: look further
        bitmap = np.zeros((len(vectors) + 7) // 8, np.uint8)
        np.bitwise_or.at(bitmap, rows >> 3, (1 << (rows & 7)).astype(np.uint8))
        selector = faiss.IDSelectorBitmap(len(vectors), faiss.swig_ptr(bitmap))
        params.sel = selector
    params.efSearch = ef
    _, ids = index.search(q[None], n_cand, params=params)
    ids = ids[0][ids[0] >= 0]
    want = min(k, len(vectors) if rows is None else len(rows))
    if len(ids) < want:
        return exact(vectors, q, k, rows)
    scores = vectors[np.sort(ids)] @ q
    ordered = np.sort(ids)
    best = top_k(scores, k)
    return Match(ordered[best].astype(np.int64), scores[best])
