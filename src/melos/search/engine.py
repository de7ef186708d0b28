"""The search engine beside the LanceDB table: the unit vectors as one raw float32 file, searched
exactly with a BLAS matrix-vector product, and from ANN_MIN_ROWS rows through a FAISS inverted
file of 4-bit product-quantised codes whose candidates are re-ranked with the float32 vectors.

    INDEX/vectors.f32   [rows, dim] float32, row r = the table row whose `row` column is r
    INDEX/ivfpq.faiss   the FAISS index (IVF lists x PQ dim/2 sub-vectors x 4 bits, fast scan,
                        inner product), when built

The vectors file is memory-mapped, so opening an index reads nothing up front. Rows are only
ever appended (`melos index build` on a grown folder, `melos index add`): the vectors file grows
at its end and the inverted file encodes the new rows into its trained lists; once the index
holds RETRAIN_GROWTH times the rows its lists were trained on, the lists are trained again.

The settings come from benchmarks/search_index.py (docs/benchmarks.md), on generated 768-d
vectors (a hard set: clusters overlapping in a shared subspace, in isotropic noise): with
`lists` = the power of two nearest 2 sqrt(rows), PROBES x sqrt(lists) lists scanned and REFINE x k
candidates re-ranked exactly, recall@10 was 0.956 at 0.81 ms a query at 10^5 rows (one core)
and 0.982 at 2.96 ms at 10^6 (two threads), built in 15 s and 83 s; FAISS HNSW32,SQ8 took 3x the
time per query for that recall at 10^5, and 412 s to build at 10^6.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VECTORS = "vectors.f32"
ANN = "ivfpq.faiss"
ANN_MIN_ROWS = 50_000  # below this an exact scan costs under ~20 ms at width 768
PROBES = 5  # lists scanned per query = PROBES x sqrt(lists)
REFINE = 20  # candidates per result re-ranked with the float32 vectors
MIN_LIST_ROWS = 39  # FAISS's minimum of training rows per k-means centroid
MIN_TRAIN_ROWS = 16 * MIN_LIST_ROWS  # the 4-bit codebooks' 16 centroids: fewer rows stay exact
TRAIN_ROWS = 100_000  # rows sampled to train the lists and the codebooks
RETRAIN_GROWTH = 4  # retrain once the index holds this many times the rows it was trained on
FILTER_ANN_FRACTION = 0.1  # a filter passing fewer rows than this is searched exactly over them
ADD_BATCH = 100_000  # rows encoded at a time (bounds memory)
SCORE_BLOCK = 2**25  # scores held at once by an exact batch search (128 MB)
SEED = 0  # the training sample and k-means initialisation: the same rows give the same index


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
    # a plain ndarray view of the map: np.memmap's subclass hooks cost more than a re-ranking's gather
    return np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim)).view(np.ndarray)


def ann_settings(rows: int, dim: int) -> dict:
    """The inverted file for `rows` vectors of width `dim`: lists, sub-quantisers, default probes."""
    lists = 2 ** max(0, round(math.log2(2 * math.sqrt(max(rows, 1)))))
    while lists > 1 and lists * MIN_LIST_ROWS > rows:  # k-means needs a few dozen rows per list
        lists //= 2
    sub = max(m for m in range(1, max(1, dim // 2) + 1) if dim % m == 0)  # dim/2 when it divides
    return {"engine": "faiss", "index_type": f"IVF{lists},PQ{sub}x4fs", "lists": lists, "sub_quantizers": sub,
            "probes": min(lists, round(PROBES * math.sqrt(lists))), "trained_rows": rows, "rows": rows}


def build_ann(vectors: np.ndarray) -> tuple[object, dict]:
    """A trained inverted file over all `vectors`, and its settings (`ann_settings`)."""
    faiss = _faiss()
    settings = ann_settings(len(vectors), vectors.shape[1])
    index = faiss.index_factory(vectors.shape[1], settings["index_type"], faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = SEED
    n_train = min(len(vectors), max(TRAIN_ROWS, MIN_LIST_ROWS * settings["lists"]))
    sample = np.sort(np.random.default_rng(SEED).choice(len(vectors), n_train, replace=False))
    index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    add_ann(index, vectors)
    return index, settings


def add_ann(index, vectors: np.ndarray, start: int = 0) -> None:
    """Encode `vectors[start:]` into the index's lists (their ids are their row numbers)."""
    for i in range(start, len(vectors), ADD_BATCH):
        index.add(np.ascontiguousarray(vectors[i:i + ADD_BATCH], dtype=np.float32))


def grow_ann(index, settings: dict, vectors: np.ndarray, start: int) -> tuple[object, dict]:
    """The index with `vectors[start:]` added, or trained again over all of them once they are
    RETRAIN_GROWTH times the rows it was trained on (its lists would be too long)."""
    if len(vectors) >= RETRAIN_GROWTH * settings["trained_rows"]:
        return build_ann(vectors)
    add_ann(index, vectors, start)
    return index, {**settings, "rows": len(vectors)}


def save_ann(index, folder: Path) -> None:
    """Write the FAISS index atomically (temporary file, then rename)."""
    tmp = folder / f".{ANN}.tmp"
    _faiss().write_index(index, str(tmp))
    os.replace(tmp, folder / ANN)


def load_ann(folder: Path, rows: int):
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


def exact(vectors: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[Match]:
    """Exact cosine top-k of each unit query [n, dim] over all vectors, or over `rows` only."""
    ordered = None if rows is None else np.sort(rows)
    pool = vectors if ordered is None else vectors[ordered] if len(ordered) else np.zeros((0, vectors.shape[1]))
    matches = []
    step = max(1, SCORE_BLOCK // max(1, len(pool)))  # queries scored at a time: bounds the [rows, n] block
    for i in range(0, len(queries), step):
        block = queries[i:i + step]
        scores = (pool @ block[0])[:, None] if len(block) == 1 else pool @ block.T  # gemv for one query
        for j in range(len(block)):
            column = np.ascontiguousarray(scores[:, j])
            best = top_k(column, k)
            matches.append(Match((best if ordered is None else ordered[best]).astype(np.int64), column[best]))
    return matches


def approximate(index, vectors: np.ndarray, queries: np.ndarray, k: int, probes: int, refine: int = REFINE,
                rows: np.ndarray | None = None) -> list[Match]:
    """Candidates from `probes` lists of the inverted file (only `rows`, when given) for each
    unit query [n, dim], re-ranked exactly; a query answered with fewer than min(k, len(rows))
    results falls back to an exact scan."""
    faiss = _faiss()
    n_cand = max(k * refine, k)
    params = faiss.SearchParametersIVF()
    if rows is not None:
        share = len(rows) / max(1, len(vectors))
        probes = round(probes / max(share, FILTER_ANN_FRACTION))  # a filter thins every list: scan more
        bitmap = np.zeros((len(vectors) + 7) // 8, np.uint8)
        np.bitwise_or.at(bitmap, rows >> 3, (1 << (rows & 7)).astype(np.uint8))
        selector = faiss.IDSelectorBitmap(len(vectors), faiss.swig_ptr(bitmap))  # kept alive past the search
        params.sel = selector
    params.nprobe = max(1, min(probes, index.nlist))
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), n_cand, params=params)
    want = min(k, len(vectors) if rows is None else len(rows))
    matches = []
    for q, ids in zip(queries, found):
        ids = np.sort(ids[ids >= 0])
        if len(ids) < want:
            matches.extend(exact(vectors, q[None], k, rows))
            continue
        scores = vectors[ids] @ q
        best = top_k(scores, k)
        matches.append(Match(ids[best].astype(np.int64), scores[best]))
    return matches
