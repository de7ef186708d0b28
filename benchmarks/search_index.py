"""Recall and latency of melos search's ANN index against exact search, on generated vectors.

    python benchmarks/search_index.py --rows 100000 --dim 768
    python benchmarks/search_index.py --rows 1000000 --dim 768 --configs IVF_PQ

Vectors imitate pooled music embeddings: 1000 clusters whose points vary in a shared
64-dimensional subspace (variances decaying as 1/i) plus isotropic noise, in `--dim` dimensions.
They are written in chunks to a melos index folder (the layout `melos index build` writes), the
ground truth is a brute-force numpy cosine top-10 over held-out queries, and every search goes
through `VectorIndex.search`, one query at a time (latency = wall time per call, p50/p95).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from melos.search.index import TABLE, IndexInfo, VectorIndex, build_ann
from melos.search.vectors import normalise, track_schema

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


def write_index(folder: Path, gen: Generator, rows: int) -> None:
    import lancedb

    shutil.rmtree(folder, ignore_errors=True)
    schema = track_schema(gen.dim)

    def batches():
        for i, start in enumerate(range(0, rows, CHUNK)):
            x = gen.chunk(i, min(CHUNK, rows - start))
            yield pa.RecordBatch.from_arrays([pa.array([f"v{start + j}" for j in range(len(x))]),
                                              pa.array(np.ones(len(x), np.int32)),
                                              pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), gen.dim)],
                                             schema=schema)

    folder.mkdir(parents=True)
    lancedb.connect(folder).create_table(TABLE, pa.RecordBatchReader.from_batches(schema, batches()))
    IndexInfo("generated", 0, "track", gen.dim, 30.0, 30.0, ann="none").save(folder)


def ground_truth(gen: Generator, rows: int, queries: np.ndarray, k: int = 10) -> list[list[str]]:
    """Exact cosine top-k by numpy, chunk by chunk."""
    best_s = np.full((len(queries), k), -np.inf)
    best_i = np.zeros((len(queries), k), np.int64)
    for i, start in enumerate(range(0, rows, CHUNK)):
        s = queries @ gen.chunk(i, min(CHUNK, rows - start)).T
        s_all = np.concatenate([best_s, s], 1)
        i_all = np.concatenate([best_i, start + np.arange(s.shape[1])[None].repeat(len(queries), 0)], 1)
        top = np.argsort(-s_all, 1)[:, :k]
        best_s, best_i = np.take_along_axis(s_all, top, 1), np.take_along_axis(i_all, top, 1)
    return [[f"v{j}" for j in row] for row in best_i]


def measure(index: VectorIndex, queries: np.ndarray, truth: list[list[str]], **kwargs) -> tuple[float, float, float]:
    """recall@10, p50 and p95 latency (ms) over the queries."""
    index.search(queries[0], 10, **kwargs)  # warm the caches
    times, hits = [], 0
    for q, t in zip(queries, truth):
        start = time.perf_counter()
        got = index.search(q, 10, **kwargs)
        times.append(1000 * (time.perf_counter() - start))
        hits += len({h.path for h in got} & set(t))
    return hits / (10 * len(queries)), float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=768, help="vector width (at least 64)")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--exact-queries", type=int, default=20, help="queries timed for exact (flat) LanceDB search")
    p.add_argument("--configs", default="IVF_PQ,IVF_HNSW_SQ", help="ANN index types to build")
    p.add_argument("--nprobes", default="8,32", help="partitions searched per query")
    p.add_argument("--refine", default="0,10", help="refine factors (0: none)")
    p.add_argument("--ef", default="0", help="HNSW search ef values (0: LanceDB's default)")
    p.add_argument("--partitions", type=int, help="IVF partitions (default: sqrt(rows), as melos index builds)")
    p.add_argument("--reuse", action="store_true", help="keep the vectors an earlier run wrote to --out")
    p.add_argument("--out", default="/tmp/melos-search-bench")
    args = p.parse_args()

    gen = Generator(args.dim)
    folder = Path(args.out) / f"n{args.rows}-d{args.dim}"
    if not (args.reuse and (folder / TABLE).with_suffix(".lance").is_dir()):
        start = time.perf_counter()
        write_index(folder, gen, args.rows)
        print(f"wrote {args.rows} x {args.dim} vectors in {time.perf_counter() - start:.1f} s -> {folder}")
    queries = Generator(args.dim).chunk(10**6, args.queries)  # held out: a chunk id no index uses
    start = time.perf_counter()
    truth = ground_truth(gen, args.rows, queries)
    print(f"numpy exact top-10 for {args.queries} queries: {time.perf_counter() - start:.1f} s")
    index = VectorIndex.open(folder)
    index.info.ann_built = None
    n_exact = min(args.exact_queries, args.queries)
    recall, p50, p95 = measure(index, queries[:n_exact], truth[:n_exact], exact=True)
    print("| index | build s | nprobes | ef | refine | recall@10 | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| exact (flat scan) | - | - | - | - | {recall:.3f} | {p50:.1f} | {p95:.1f} |", flush=True)
    for kind in args.configs.split(","):
        start = time.perf_counter()
        settings = build_ann(index.table, kind, args.dim, num_partitions=args.partitions)
        build = time.perf_counter() - start
        index.info.ann_built = settings
        label = f"{kind} ({settings['num_partitions']} partitions" + (
            f", {settings['num_sub_vectors']} sub-vectors)" if "num_sub_vectors" in settings else ")")
        grid = [(n, e, r) for n in map(int, args.nprobes.split(",")) for e in map(int, args.ef.split(","))
                for r in map(int, args.refine.split(","))]
        for nprobes, ef, refine in grid:
            recall, p50, p95 = measure(index, queries, truth, nprobes=nprobes, refine_factor=refine or None,
                                       ef=ef or None)
            print(f"| {label} | {build:.0f} | {nprobes} | {ef or '-'} | {refine or '-'} | {recall:.3f} | {p50:.1f} "
                  f"| {p95:.1f} |", flush=True)


if __name__ == "__main__":
    main()
