"""`melos embed --engine ray`: the job of `pipeline.embed`, on a Ray cluster, with the same outputs.

    driver                       Ray Data (streaming)
    sources ─> from_items ─> decode: CPU tasks, one file each (`iter_file`) -> its windows
                         ─> _Embedder actors (`workers`, one encoder replica each):
                            equal-length windows batched, `WindowEncoder`, each file's output
                            (safetensors, or a parquet part per task) written as it completes
    index.jsonl <─ index rows, streamed back as each actor task ends

The driver loads the encoder once and ships it to the actors through the object store, so every
replica holds the same weights (a preset's random weights too) and the workers need no access
to the checkpoint. A killed actor costs only its task's files: Ray restarts it and retries the
task (`max_restarts`, `max_task_retries`); a part it wrote but never reported is removed at the
end. `out_dir` must be on a file system every node shares.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..audio import AudioError
from ..data.sources import AudioSource, list_sources
from ..models import Encoder, load_encoder
from ..models.loading import PRESET_SEED
from .pipeline import (WindowEncoder, _check_unique, _FileEnd, _Pending, _Window, check_settings, file_embeddings,
                       iter_file, model_name, parse_layers, pending_sources, record, run_metadata)
from .store import Index, IndexRow, ParquetSink, RunSummary, SafetensorsSink, remove_orphan_parts

INSTALL = "--engine ray needs Ray, which is not installed: pip install 'melos[ray]'"
# Retries of a killed actor and of the task it was running; bounded, so a file that kills its
# worker every time (out of memory) ends the run instead of looping.
MAX_RETRIES = 3
# Input blocks: one file each for small runs (decoding spreads over tasks), at most this many.
MAX_BLOCKS = 1000


def import_ray():
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ValueError(INSTALL) from None
    return ray


def embed_ray(model: Encoder | str, input: str | Path | Sequence[AudioSource], out_dir: str | Path, *,
              layers: str | Sequence[int] = "all", window: float = 30.0, hop: float | None = None,
              pool: str = "mean", device: str = "cpu", dtype: str = "float32", batch_size: int = 1,
              skip_existing: bool = False, max_duration: float | None = None, allow_truncated: bool = False,
              format: str = "safetensors", workers: int = 1, cpus_per_worker: float = 1.0,
              gpus_per_worker: float = 0.0, address: str | None = None, files_per_task: int = 4,
              seed: int = PRESET_SEED, progress: bool = True) -> RunSummary:
    """`pipeline.embed` on Ray; the arguments it shares with it mean the same.

    Args:
        workers: encoder actors (one model replica each).
        cpus_per_worker, gpus_per_worker: Ray resources per actor; torch gets that many threads.
        address: "auto" or "ray://host:10001" joins a running cluster; None starts a local Ray.
        files_per_task: files per actor task (and per parquet part): what a killed actor costs.
    """
    ray = import_ray()
    hop = window if hop is None else hop
    check_settings(window, hop, pool, dtype, batch_size, format)
    if workers < 1 or files_per_task < 1:
        raise ValueError("workers and files_per_task must be at least 1")
    encoder = (load_encoder(model, seed=seed) if isinstance(model, (str, Path)) else model).eval()
    layer_ids = parse_layers(layers, encoder.n_hidden_states)
    sources = list(input) if isinstance(input, (list, tuple)) else list_sources(input)
    _check_unique(sources)
    out_dir = Path(out_dir).resolve()  # actors run elsewhere: give them an absolute path
    started = not ray.is_initialized()
    if started:  # before the index is opened, so a failed join leaves an earlier run's index as it was
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except ConnectionError as err:
            raise ValueError(f"--address {address}: no Ray cluster to join ({err})") from None
    try:
        return _run(ray, sources, out_dir, skip_existing, format, progress,
                    run_metadata(model_name(model, encoder), encoder, window, hop, pool), workers, files_per_task,
                    dict(encoder=encoder, layer_ids=layer_ids, pool=pool, device=device, dtype=dtype,
                         batch_size=batch_size, out_dir=str(out_dir), format=format,
                         threads=max(1, round(cpus_per_worker))),
                    dict(sample_rate=encoder.sample_rate, window=window, hop=hop, max_duration=max_duration,
                         allow_truncated=allow_truncated),
                    dict(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker))
    finally:
        if started:
            ray.shutdown()


def _run(ray, sources: list[AudioSource], out_dir: Path,
         skip_existing: bool, format: str, progress: bool, metadata: dict[str, str], workers: int,
         files_per_task: int, actor_kwargs: dict, decode_kwargs: dict, resources: dict) -> RunSummary:
    """The run itself, on an initialised Ray: the Ray Data pipeline, its rows into the index."""
    index = Index(out_dir, resume=skip_existing)
    summary = RunSummary(out_dir)
    todo = pending_sources(sources, index, out_dir, summary, skip_existing)
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="file", disable=not progress, desc="embed (ray)", dynamic_ncols=True)
    try:
        if todo:
            ray.data.DataContext.get_current().enable_progress_bars = False
            ds = ray.data.from_items([{"path": str(s.path), "name": s.name} for s in todo],
                                     override_num_blocks=min(len(todo), MAX_BLOCKS))
            # Decoding is ~1% of the model's time on a CPU: its tasks reserve no CPU of their own,
            # so they run beside actors that hold every core, at most four per worker.
            ds = ds.flat_map(_decode, fn_kwargs=decode_kwargs, num_cpus=0,
                             **_task_pool(ray, min(4 * workers, len(todo))))
            with warnings.catch_warnings():
                # Ray Data's own default is endless retries; the actor options that bound them
                # have no named parameter yet, and Ray 2.51+ warns on every extra option.
                warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
                ds = ds.map_batches(_Embedder, batch_size=files_per_task, batch_format="numpy",
                                    fn_constructor_kwargs={**actor_kwargs, "metadata": metadata},
                                    compute=ray.data.ActorPoolStrategy(size=workers), **resources,
                                    max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)
            for item in ds.iter_rows():
                record(IndexRow(**json.loads(item["row"])), index, summary)
                bar.update(1)
        if format == "parquet":
            remove_orphan_parts(out_dir, index.rows)
    finally:
        summary.wall_seconds = time.perf_counter() - start
        bar.close()
        index.close()
    return summary


def _task_pool(ray, size: int) -> dict:
    """At most `size` tasks at once (`compute=TaskPoolStrategy` from Ray 2.51 on, `concurrency` before)."""
    if hasattr(ray.data, "TaskPoolStrategy"):
        return {"compute": ray.data.TaskPoolStrategy(size=size)}
    return {"concurrency": size}


def _decode(row: dict, sample_rate: int, window: float, hop: float, max_duration: float | None,
            allow_truncated: bool) -> list[dict]:
    """One file -> one row: its windows concatenated (`audio`, split by `lengths`), or its `error`."""
    source = AudioSource(Path(row["path"]), row["name"])
    windows: list[torch.Tensor] = []
    try:
        for item in iter_file(0, source, sample_rate, window, hop, max_duration, allow_truncated):
            if isinstance(item, _Pending):
                pending = item
            elif isinstance(item, _Window):
                windows.append(item.audio)
            elif isinstance(item, _FileEnd):
                pending.end(item.n_windows, source.path)
    except AudioError as err:
        return [{**row, "error": str(err), "duration": 0.0, "starts": np.zeros(0), "lengths": np.zeros(0, np.int64),
                 "audio": np.zeros(0, np.float32)}]
    return [{**row, "error": "", "duration": pending.duration, "starts": np.asarray(pending.starts, np.float64),
             "lengths": np.array([w.numel() for w in windows], np.int64),
             "audio": torch.cat(windows).numpy().astype(np.float32, copy=False)}]


class _Embedder:
    """A Ray actor holding one encoder replica; a call embeds a few decoded files and writes them."""

    def __init__(self, encoder: Encoder, layer_ids: list[int], pool: str, device: str, dtype: str,
                 batch_size: int, out_dir: str, format: str, metadata: dict[str, str], threads: int):
        torch.set_num_threads(threads)
        self.forward = WindowEncoder(encoder.to(device).eval(), layer_ids, pool, device, dtype)
        self.batch_size, self.out_dir, self.format, self.metadata = batch_size, Path(out_dir), format, metadata

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # One parquet part per task: it appears with the task's rows, or not at all.
        sink = (ParquetSink(self.out_dir, self.metadata, self.forward.layer_ids, max_files=len(batch["path"]) + 1)
                if self.format == "parquet" else SafetensorsSink(self.out_dir))
        rows: list[IndexRow] = []
        sources, pending, buckets = {}, {}, {}
        for k, path in enumerate(batch["path"]):
            sources[k] = AudioSource(Path(path), str(batch["name"][k]))
            if batch["error"][k]:
                rows.append(IndexRow(str(path), "error", error=str(batch["error"][k])))
                continue
            pending[k] = _Pending(k, float(batch["duration"][k]), batch["starts"][k].tolist(), ended=True)
            audio = torch.from_numpy(np.array(batch["audio"][k], np.float32))  # a writable copy
            for i, w in enumerate(audio.split(batch["lengths"][k].tolist())):
                buckets.setdefault(w.numel(), []).append(_Window(k, i, w))
        for windows in buckets.values():
            for b in range(0, len(windows), self.batch_size):
                chunk = [w for w in windows[b: b + self.batch_size] if w.file in pending]
                if not chunk:
                    continue
                try:
                    pooled = self.forward(torch.stack([w.audio for w in chunk]))
                except ValueError as err:  # e.g. a window shorter than the receptive field
                    for w in chunk:
                        if pending.pop(w.file, None) is not None:
                            rows.append(IndexRow(str(sources[w.file].path), "error", error=str(err)))
                    continue
                for w, result in zip(chunk, pooled):
                    p = pending[w.file]
                    p.results[w.index] = result
                    if p.complete:
                        del pending[w.file]
                        embeddings = file_embeddings([p.results[i] for i in range(len(p.starts))], p.starts,
                                                     p.duration, self.forward.pool, self.forward.layer_ids,
                                                     self.metadata, sources[w.file])
                        rows += sink.add(sources[w.file], embeddings, p.duration)
        rows += sink.flush()
        return {"row": np.array([json.dumps(asdict(r)) for r in rows], dtype=object)}
