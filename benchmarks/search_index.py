"""melos search beside FAISS, hnswlib and numpy on the same generated vectors, in one run.

    OMP_NUM_THREADS=1 python benchmarks/search_index.py --rows 100000 --dim 768
    OMP_NUM_THREADS=2 python benchmarks/search_index.py --rows 1000000 --dim 768 --skip faiss-hnsw-flat

Vectors imitate pooled music embeddings: 1000 clusters whose points vary in a shared
64-dimensional subspace (variances decaying as 1/i) plus isotropic noise, in `--dim` dimensions,
L2-normalised (cosine = inner product). Every engine indexes the same rows; the truth is numpy's
exact top-10 of held-out queries. For each engine: build time (single process, the threads
OMP_NUM_THREADS allows), size on disk (the index written to --out), recall@10 against exact,
p50/p99 latency of one query at a time, and queries/s for the whole query set in one call.

melos goes through its own path: the vectors are written as a `melos embed --format parquet`
folder (one 1 s window per "file"), `VectorIndex.build` indexes 90% of it, the last 10% is added
by building again on the grown folder (timed as "add"), and queries go through
`VectorIndex.search` (metadata fetch included), batches through `VectorIndex.search_many`.
FAISS IVF-PQ is given melos's own lists, codes, training sample and re-ranking depth, so the two
rows differ only by what melos adds around FAISS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from melos.search import engine
from melos.search.vectors import normalise

N_CLUSTERS, RANK, CHUNK = 1000, 64, 50_000


class Generator:
    """Deterministic clustered vectors: chunk `i` is the same on every call."""

    def __init__(self, dim: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.dim, self.seed = dim, seed
        self.centres = rng.standard_normal((N_CLUSTERS, dim)) * 0.6
        self.basis = np.linalg.qr(rng.standard_normal((dim, RANK)))[0] * np.sqrt(dim / np.arange(1, RANK + 1))

    def chunk(self, i: int, n: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, i))
        z = rng.standard_normal((n, RANK)) @ self.basis.T * 0.5
        return normalise(self.centres[rng.integers(0, N_CLUSTERS, n)] + z + 0.3 * rng.standard_normal((n, self.dim)))


def vectors(gen: Generator, rows: int) -> np.ndarray:
    return np.concatenate([gen.chunk(i, min(CHUNK, rows - s)) for i, s in enumerate(range(0, rows, CHUNK))])


def disk_mb(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


@dataclass
class Row:
    engine: str
    setting: str
    build_s: float
    disk_mb: float
    recall: float
    p50_ms: float
    p99_ms: float
    qps: float

    def line(self) -> str:
        return (f"| {self.engine} | {self.setting} | {self.build_s:.1f} | {self.disk_mb:.0f} | {self.recall:.3f} "
                f"| {self.p50_ms:.2f} | {self.p99_ms:.2f} | {self.qps:.0f} |")


def recall_at(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / truth.shape[1] for a, b in zip(ids, truth)]))


def timed(one, batch, queries: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Ids of every query (from `batch`), p50/p99 ms of `one` per query, and batch queries/s."""
    one(queries[0])  # warm caches
    times = []
    for q in queries:
        start = time.perf_counter()
        one(q)
        times.append(1000 * (time.perf_counter() - start))
    start = time.perf_counter()
    ids = batch(queries)
    qps = len(queries) / (time.perf_counter() - start)
    return ids, float(np.percentile(times, 50)), float(np.percentile(times, 99)), qps


def numpy_exact(x: np.ndarray, k: int = 10):
    def one(q):
        s = x @ q
        top = np.argpartition(-s, k)[:k]
        return top[np.argsort(-s[top])]

    def batch(qs):
        s = qs @ x.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        return np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), 1), 1)
    return one, batch


def faiss_engine(index, k: int = 10):
    return (lambda q: index.search(q[None], k)[1][0]), (lambda qs: index.search(qs, k)[1])


def run_faiss(name: str, factory: str, x: np.ndarray, queries, truth, out: Path, settings) -> list[Row]:
    """Build `factory` (inner product) and measure it at each (label, setter) of `settings`."""
    import faiss

    start = time.perf_counter()
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if "HNSW" in factory:
        faiss.downcast_index(index.index if "RFlat" in factory else index).hnsw.efConstruction = 80
    if "IVF" in factory:  # melos's training sample and k-means seed
        faiss.extract_index_ivf(index).cp.seed = engine.SEED
        n_train = min(len(x), max(engine.TRAIN_ROWS, engine.MIN_LIST_ROWS * faiss.extract_index_ivf(index).nlist))
        index.train(x[np.sort(np.random.default_rng(engine.SEED).choice(len(x), n_train, replace=False))])
    else:
        index.train(x)
    index.add(x)
    build = time.perf_counter() - start
    path = out / f"{name}.faiss"
    faiss.write_index(index, str(path))
    rows = []
    for label, apply in settings:
        apply(index)
        ids, p50, p99, qps = timed(*faiss_engine(index), queries)
        rows.append(Row(name, f"{factory} {label}", build, disk_mb(path), recall_at(ids, truth), p50, p99, qps))
        print(rows[-1].line(), flush=True)
    return rows


def hnsw_ef(ef: int):
    import faiss

    return f"efSearch {ef}", lambda index: setattr(faiss.downcast_index(index).hnsw, "efSearch", ef)


def ivf_probe(nprobe: int, k_factor: int = engine.REFINE):
    import faiss

    def apply(index):
        faiss.extract_index_ivf(index).nprobe = nprobe
        faiss.downcast_index(index).k_factor = k_factor
    return f"nprobe {nprobe}, refine x{k_factor}", apply


def run_hnswlib(x: np.ndarray, queries, truth, out: Path, efs) -> list[Row]:
    import hnswlib

    start = time.perf_counter()
    index = hnswlib.Index("ip", x.shape[1])
    index.init_index(len(x), M=16, ef_construction=100)
    index.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    index.add_items(x)
    build = time.perf_counter() - start
    path = out / "hnswlib.bin"
    index.save_index(str(path))
    rows = []
    for ef in efs:
        index.set_ef(ef)
        ids, p50, p99, qps = timed(lambda q: index.knn_query(q, 10)[0], lambda qs: index.knn_query(qs, 10)[0], queries)
        rows.append(Row("hnswlib", f"M 16, ef_construction 100, ef {ef}", build, disk_mb(path),
                        recall_at(ids, truth), p50, p99, qps))
        print(rows[-1].line(), flush=True)
    return rows


def write_parts(folder: Path, x: np.ndarray, start: int, part: int) -> None:
    """Rows `x` as a melos embed parquet part: file v<i>, one 1 s window each, layer 0."""
    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    meta = {b"model": b"generated", b"window": b"1.0", b"hop": b"1.0", b"layers": b"0", b"pool": b"mean"}
    table = pa.table({"path": pa.array([f"v{start + i}" for i in range(len(x))]),
                      "window": pa.array(np.zeros(len(x), np.int32)), "start": pa.array(np.zeros(len(x))),
                      "layer_0": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])})
    pq.write_table(table.replace_schema_metadata(meta), folder / "parquet" / f"part-{part:05d}.parquet")


def run_melos(x: np.ndarray, queries, truth, out: Path, probes) -> list[Row]:
    from melos.search import VectorIndex

    emb, folder = out / "melos-emb", out / "melos.index"
    shutil.rmtree(emb, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    first = int(0.9 * len(x))
    write_parts(emb, x[:first], 0, 0)
    start = time.perf_counter()
    VectorIndex.build(folder, emb, 0, "window")
    build = time.perf_counter() - start
    write_parts(emb, x[first:], first, 1)
    start = time.perf_counter()
    index, report = VectorIndex.build(folder, emb, 0, "window")
    add = time.perf_counter() - start
    assert report.incremental and len(index) == len(x), "the second build should have added the last 10%"
    print(f"melos: build of {first} rows {build:.1f} s, incremental add of {len(x) - first} rows {add:.1f} s "
          f"({index.info.ann_built or 'exact'})", flush=True)
    index = VectorIndex.open(folder)  # loaded from disk, as `melos search` does
    rows = []

    def ids_of(hits):
        return np.array([int(h.path[1:]) for h in hits])

    kind = index.info.ann_built["index_type"] if index.info.ann_built else "exact"
    for label, kwargs in [("exact", {"exact": True}),
                          *((f"{kind} probes {n}, refine x{engine.REFINE}", {"probes": n}) for n in probes)]:
        def one(q, kwargs=kwargs):
            return ids_of(index.search(q, 10, **kwargs))

        def batch(qs, kwargs=kwargs):
            return np.stack([ids_of(hits) for hits in index.search_many(qs, 10, **kwargs)])
        ids, p50, p99, qps = timed(one, batch, queries)
        rows.append(Row("melos", label, build, disk_mb(folder), recall_at(ids, truth), p50, p99, qps))
        print(rows[-1].line(), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=768, help="vector width (at least 64)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--ef", default="256,768", help="HNSW search candidates (faiss efSearch, hnswlib ef)")
    p.add_argument("--probes", help="IVF lists scanned per query, faiss IVF-PQ and melos (default: melos's "
                                    "default and half of it)")
    p.add_argument("--skip", default="", help="engines to leave out: numpy,faiss-flat,faiss-hnsw-flat,"
                                              "faiss-hnsw-sq8,faiss-ivfpq,hnswlib,melos")
    p.add_argument("--out", default="/tmp/melos-search-bench")
    args = p.parse_args()

    skip = set(args.skip.split(","))
    efs = [int(e) for e in args.ef.split(",")]
    settings = engine.ann_settings(args.rows, args.dim)
    probes = [int(n) for n in args.probes.split(",")] if args.probes else [settings["probes"] // 2, settings["probes"]]
    out = Path(args.out) / f"n{args.rows}-d{args.dim}"
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(args.dim)
    start = time.perf_counter()
    x = vectors(gen, args.rows)
    queries = Generator(args.dim).chunk(10**6, args.queries)  # held out: a chunk id no index uses
    print(f"generated {args.rows} x {args.dim} in {time.perf_counter() - start:.1f} s; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
    truth = numpy_exact(x)[1](queries)
    print("| engine | setting | build s | disk MB | recall@10 | p50 ms | p99 ms | batch q/s |")
    print("|---|---|---|---|---|---|---|---|")
    if "numpy" not in skip:
        np.save(out / "numpy.npy", x)
        ids, p50, p99, qps = timed(*numpy_exact(x), queries)
        print(Row("numpy", "exact (x @ q, argpartition)", 0.0, disk_mb(out / "numpy.npy"), recall_at(ids, truth),
                  p50, p99, qps).line(), flush=True)
    if "faiss-flat" not in skip:
        run_faiss("faiss-flat", "Flat", x, queries, truth, out, [("exact", lambda index: None)])
    if "faiss-hnsw-flat" not in skip:
        run_faiss("faiss-hnsw-flat", "HNSW32,Flat", x, queries, truth, out, [hnsw_ef(e) for e in efs])
    if "faiss-hnsw-sq8" not in skip:
        run_faiss("faiss-hnsw-sq8", "HNSW32,SQ8", x, queries, truth, out, [hnsw_ef(e) for e in efs])
    if "faiss-ivfpq" not in skip:
        run_faiss("faiss-ivfpq", f"{settings['index_type']},RFlat", x, queries, truth, out,
                  [ivf_probe(n) for n in probes])
    if "hnswlib" not in skip:
        run_hnswlib(x, queries, truth, out, efs)
    if "melos" not in skip:
        run_melos(x, queries, truth, out, probes)


if __name__ == "__main__":
    main()
