"""`melos.embed`: embed a collection of audio files with any melos encoder (the local engine).

    decoder thread                     main thread
    file -> windows (decode, resample) ─queue─> buckets of equal-length windows
                                                -> encoder batch -> pool -> per-file results
                                                -> sink (safetensors file, or parquet part) + index row

Decoding runs ahead of the model in a background thread (libsndfile and soxr release the GIL),
windows of equal length from different files share a batch, and each file's output is written
atomically the moment its last window is done (parquet: with its part), so an interrupted run loses at most the files
in flight and `skip_existing` resumes it. The pieces both engines share (`iter_file`,
`WindowEncoder`, `file_embeddings`, `run_metadata`) live here; `ray_engine` runs the same job
on a Ray cluster.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from ..audio import AudioError, info, iter_windows, window_starts
from ..data.sources import AudioSource, list_sources
from ..models import Encoder, load_encoder
from ..models.loading import PRESET_SEED
from ..models.precision import bf16_supported, held_in_bfloat16
from .store import SUFFIX, Embeddings, Index, IndexRow, RunSummary, Sink, make_sink, remove_orphan_parts

log = logging.getLogger(__name__)


@dataclass
class _Window:
    file: int
    index: int
    audio: torch.Tensor  # (N,)


@dataclass
class _FileEnd:
    """The decoder yielded all `n_windows` windows of a file."""

    file: int
    n_windows: int


@dataclass
class _Pending:
    """A file whose windows are being embedded."""

    file: int
    duration: float
    starts: list[float]
    results: dict[int, torch.Tensor] = field(default_factory=dict)
    ended: bool = False

    @property
    def complete(self) -> bool:
        return self.ended and len(self.results) == len(self.starts)

    def end(self, n_windows: int, path: Path) -> None:
        """The decoder yielded `n_windows`: the header's duration can promise a sliver more than
        decodes, so trust the decoder."""
        if n_windows == 0:
            raise AudioError(path, "no complete window could be decoded")
        del self.starts[n_windows:]
        self.ended = True


# A last window shorter than this is dropped (unless it is the file's only window): a few frames
# of tail would otherwise weigh as much as a full window in window-averaged predictions.
MIN_TAIL_SECONDS = 1.0


def file_windows(duration: float, window: float, hop: float) -> list[float]:
    """Window start times for a file: `window_starts`, minus a last window under MIN_TAIL_SECONDS."""
    starts = window_starts(duration, window, hop)
    if len(starts) > 1 and duration - starts[-1] < MIN_TAIL_SECONDS:
        starts.pop()
    return starts


def parse_layers(layers: str | Sequence[int], n_hidden_states: int) -> list[int]:
    """"all" or a comma list such as "0,5,7" -> hidden-state indices (negative ones count from the end)."""
    if isinstance(layers, str):
        if layers == "all":
            return list(range(n_hidden_states))
        try:
            layers = [int(x) for x in layers.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--layers expects 'all' or a comma list of integers, got {layers!r}") from None
    out = [i + n_hidden_states if i < 0 else i for i in layers]
    bad = [i for i in out if not 0 <= i < n_hidden_states]
    if bad or not out:
        raise ValueError(f"layers {list(layers)} out of range: this model has hidden states 0..{n_hidden_states - 1}")
    return out


def run_metadata(model_name: str, encoder: Encoder, window: float, hop: float, pool: str) -> dict[str, str]:
    """The settings every output of a run carries (safetensors metadata, parquet schema metadata)."""
    return {"model": model_name, "sample_rate": str(encoder.sample_rate), "frame_rate": str(encoder.frame_rate),
            "window": str(window), "hop": str(hop), "pool": pool}


def model_name(model: Encoder | str | Path, encoder: Encoder) -> str:
    return str(model) if isinstance(model, (str, Path)) else type(encoder).__name__


def check_settings(window: float, hop: float, pool: str, dtype: str, batch_size: int, format: str) -> None:
    if pool not in ("mean", "none"):
        raise ValueError(f"pool must be 'mean' or 'none', got {pool!r}")
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    if window <= 0 or hop <= 0 or batch_size < 1:
        raise ValueError("window and hop must be positive and batch_size at least 1")
    if format not in ("safetensors", "parquet"):
        raise ValueError(f"format must be 'safetensors' or 'parquet', got {format!r}")
    if format == "parquet" and pool != "mean":
        raise ValueError("--format parquet stores one row per window: it needs --pool mean, not --pool none")


def iter_file(file: int, source: AudioSource, sample_rate: int, window: float, hop: float,
              max_duration: float | None, allow_truncated: bool) -> Iterator["_Pending | _Window | _FileEnd"]:
    """Decode one file: its `_Pending` (duration, window starts), each `_Window`, then `_FileEnd`.

    Raises AudioError for a bad file; any other decoder error becomes one too, so it costs one
    file, not the run."""
    try:
        duration = info(source.path, allow_truncated).duration
        if max_duration is not None:
            duration = min(duration, max_duration)
        starts = file_windows(duration, window, hop)
        end = round(duration * sample_rate)
        yield _Pending(file, duration, starts)
        n_windows = 0
        for w in iter_windows(source.path, sample_rate, window, hop, allow_truncated=allow_truncated):
            if w.index >= len(starts):
                break  # past max_duration: stop decoding
            start = round(w.start * sample_rate)
            yield _Window(file, w.index, w.audio[: end - start])
            n_windows += 1
        yield _FileEnd(file, n_windows)
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(source.path, f"unexpected {type(err).__name__}: {err}") from err


class WindowEncoder:
    """The encoder call both engines make: a batch of equal-length windows -> kept layers, pooled.

    dtype "bfloat16": on a CPU, a copy of the encoder with its weights held in bf16 and its norms
    in fp32 (`models.precision`); on a CPU without native bf16 it says so once and runs fp32; on
    a GPU, autocast."""

    def __init__(self, encoder: Encoder, layer_ids: list[int], pool: str, device: str, dtype: str):
        self.encoder, self.layer_ids, self.pool, self.device = encoder, layer_ids, pool, device
        on_cpu = torch.device(device).type == "cpu"
        if dtype == "bfloat16" and on_cpu:
            if bf16_supported():
                self.encoder = held_in_bfloat16(encoder)
            else:
                log.warning("this CPU has no native bfloat16 (AVX512-BF16 or AMX): embedding in float32")
        self.autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                                       enabled=dtype == "bfloat16" and not on_cpu)

    @torch.inference_mode()
    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, N] -> [B, n_layers, H] (pool "mean") or [B, n_layers, T, H] (pool "none"), float32 on CPU."""
        with self.autocast:
            states = self.encoder(audio.to(self.device)).hidden_states
        x = torch.stack([states[i].float() for i in self.layer_ids], dim=1)  # (B, n_layers, T, H), pooled in fp32
        if self.pool == "mean":
            x = x.mean(dim=2)
        return x.cpu()


def file_embeddings(results: list[torch.Tensor], starts: list[float], duration: float, pool: str,
                    layer_ids: list[int], metadata: dict[str, str], source: AudioSource) -> Embeddings:
    """One file's output from its per-window results (in window order)."""
    if pool == "mean":
        embeddings = torch.stack(results, dim=1)  # (n_layers, n_windows, H)
        frames = torch.full((len(results),), -1, dtype=torch.int64)
    else:
        embeddings = torch.cat(results, dim=1)  # (n_layers, sum T, H)
        frames = torch.tensor([r.shape[1] for r in results], dtype=torch.int64)
    return Embeddings(embeddings, torch.tensor(starts, dtype=torch.float64), frames,
                      torch.tensor(layer_ids, dtype=torch.int64),
                      {**metadata, "source": str(source.path), "duration": str(duration)})


def embed(model: Encoder | str, input: str | Path | Sequence[AudioSource], out_dir: str | Path, *,
          layers: str | Sequence[int] = "all", window: float = 30.0, hop: float | None = None,
          pool: str = "mean", device: str = "cpu", dtype: str = "float32", batch_size: int = 1,
          skip_existing: bool = False, max_duration: float | None = None, allow_truncated: bool = False,
          format: str = "safetensors", seed: int = PRESET_SEED, progress: bool = True) -> RunSummary:
    """Embed every audio file of `input` into `out_dir` (see the module docstring).

    Args:
        model: an encoder, or anything `melos.load_encoder` accepts.
        input: a file, a folder (recursive), a JSONL manifest with a `path` per line, or sources.
        out_dir: gets `<name>.safetensors` per file (or `parquet/part-*.parquet`) and `index.jsonl`.
        layers: "all" or hidden-state indices to keep.
        window, hop: window length and hop in seconds (hop defaults to window).
        pool: "mean" (over time, per window -> [n_layers, n_windows, H]) or "none" (frames).
        device, dtype: where the encoder runs; "bfloat16" holds the weights in bf16 on a CPU
            (about 1.6x fp32's speed on one with AVX512-BF16) and uses autocast on a GPU.
        batch_size: windows per encoder call.
        skip_existing: keep files that an earlier run finished; retry failed ones.
        max_duration: embed only the first `max_duration` seconds of each file.
        allow_truncated: embed what decodes of a file cut short (logged as a warning) instead of
            failing it as truncated.
        format: "safetensors" (a file per input file) or "parquet" (a row per window, see `store`).
        seed: the seed of a preset's random weights (see `load_encoder`); checkpoints ignore it.

    Returns a RunSummary; bad files are listed there and in the index, never fatal.
    """
    hop = window if hop is None else hop
    check_settings(window, hop, pool, dtype, batch_size, format)
    encoder = (load_encoder(model, seed=seed) if isinstance(model, (str, Path)) else model).to(device).eval()
    layer_ids = parse_layers(layers, encoder.n_hidden_states)
    sources = list(input) if isinstance(input, (list, tuple)) else list_sources(input)
    _check_unique(sources)
    out_dir = Path(out_dir)
    index = Index(out_dir, resume=skip_existing)
    summary = RunSummary(out_dir)
    todo = pending_sources(sources, index, out_dir, summary, skip_existing)
    metadata = run_metadata(model_name(model, encoder), encoder, window, hop, pool)
    sink = make_sink(format, out_dir, metadata, layer_ids)
    runner = _Runner(WindowEncoder(encoder, layer_ids, pool, device, dtype), window, hop, batch_size, sink, index,
                     summary, metadata, max_duration, allow_truncated)
    try:
        runner.run(todo, progress)
        if format == "parquet":
            remove_orphan_parts(out_dir, index.rows)
    finally:
        index.close()
    return summary


def pending_sources(sources: Sequence[AudioSource], index: Index, out_dir: Path, summary: RunSummary,
                    skip_existing: bool) -> list[AudioSource]:
    """The sources still to embed; those an earlier run finished count as skipped."""
    todo = []
    for source in sources:
        if skip_existing and index.done(str(source.path), out_dir):
            summary.n_skipped += 1
        else:
            todo.append(source)
    return todo


def record(row: IndexRow, index: Index, summary: RunSummary) -> None:
    """Add a finished file's row to the index and the run's summary."""
    index.add(row)
    if row.status == "ok":
        summary.n_done += 1
        summary.audio_seconds += row.duration or 0.0
    else:
        summary.failed[row.path] = row.error or ""


def _check_unique(sources: Sequence[AudioSource]) -> None:
    seen: dict[str, Path] = {}
    for s in sources:
        if s.name in seen and seen[s.name] != s.path:
            raise ValueError(f"{s.path} and {seen[s.name]} would both be written to {s.name}{SUFFIX}")
        seen[s.name] = s.path


class _Runner:
    """Holds the state of one `embed` call."""

    def __init__(self, forward: WindowEncoder, window: float, hop: float, batch_size: int, sink: Sink, index: Index,
                 summary: RunSummary, metadata: dict[str, str], max_duration: float | None = None,
                 allow_truncated: bool = False):
        self.forward, self.window, self.hop, self.batch_size = forward, window, hop, batch_size
        self.sink, self.index, self.summary, self.metadata = sink, index, summary, metadata
        self.max_duration, self.allow_truncated = max_duration, allow_truncated
        self.pending: dict[int, _Pending] = {}
        self.buckets: dict[int, list[_Window]] = defaultdict(list)
        self.bucket_age: dict[int, int] = {}
        self.n_calls = 0

    def run(self, sources: list[AudioSource], progress: bool) -> None:
        self.sources = sources
        start = time.perf_counter()
        items: queue.Queue = queue.Queue(maxsize=4 * self.batch_size)
        stop = threading.Event()
        thread = threading.Thread(target=self._decode, args=(sources, items, stop), daemon=True)
        thread.start()
        bar = tqdm(total=len(sources), unit="file", disable=not progress, desc="embed", dynamic_ncols=True)
        self.bar = bar
        try:
            while (item := items.get()) is not None:
                if isinstance(item, _Pending):
                    self.pending[item.file] = item
                elif isinstance(item, _FileEnd):
                    self._file_end(item)
                elif isinstance(item, tuple):  # (file id, AudioError)
                    self._fail(item[0], item[1])
                else:
                    self._add(item)
            for length in list(self.buckets):
                self._flush(length)
            self._record(self.sink.flush())
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:  # unblock the decoder if it waits on a full queue
                    items.get_nowait()
            thread.join()
            self.summary.wall_seconds = time.perf_counter() - start
            bar.close()

    # decoding (background thread)
    def _decode(self, sources: list[AudioSource], items: queue.Queue, stop: threading.Event) -> None:
        sample_rate = self.forward.encoder.sample_rate
        try:
            for i, source in enumerate(sources):
                try:
                    for item in iter_file(i, source, sample_rate, self.window, self.hop, self.max_duration,
                                          self.allow_truncated):
                        if stop.is_set():
                            return
                        items.put(item)
                except AudioError as err:
                    items.put((i, err))
        finally:
            items.put(None)

    # batching and the model (main thread)
    def _add(self, w: _Window) -> None:
        n = w.audio.shape[-1]
        bucket = self.buckets[n]
        if not bucket:
            self.bucket_age[n] = self.n_calls
        bucket.append(w)
        if len(bucket) >= self.batch_size:
            self._flush(n)
        # A partial bucket (a short last window) waits at most two model calls, so finished
        # files are written promptly and memory stays bounded.
        for length in [k for k, age in self.bucket_age.items() if self.n_calls - age >= 2 and self.buckets[k]]:
            self._flush(length)

    def _flush(self, length: int) -> None:
        batch = self.buckets.pop(length, [])
        self.bucket_age.pop(length, None)
        if not batch:
            return
        batch = [w for w in batch if w.file in self.pending]  # files that failed meanwhile
        if not batch:
            return
        try:
            pooled = self.forward(torch.stack([w.audio for w in batch]))
        except ValueError as err:  # e.g. a window shorter than the receptive field
            for w in batch:
                self._fail(w.file, err)
            return
        self.n_calls += 1
        for w, result in zip(batch, pooled):
            pending = self.pending.get(w.file)
            if pending is None:
                continue
            pending.results[w.index] = result
            if pending.complete:
                self._finish(w.file)

    def _file_end(self, end: _FileEnd) -> None:
        pending = self.pending.get(end.file)
        if pending is None:
            return
        try:
            pending.end(end.n_windows, self.sources[end.file].path)
        except AudioError as err:
            self._fail(end.file, err)
            return
        if pending.complete:
            self._finish(end.file)

    def _finish(self, file: int) -> None:
        p = self.pending.pop(file)
        source = self.sources[file]
        embeddings = file_embeddings([p.results[i] for i in range(len(p.starts))], p.starts, p.duration,
                                     self.forward.pool, self.forward.layer_ids, self.metadata, source)
        self._record(self.sink.add(source, embeddings, p.duration))

    def _fail(self, file: int, err: Exception) -> None:
        self.pending.pop(file, None)
        self._record([IndexRow(str(self.sources[file].path), "error", error=str(err))])

    def _record(self, rows: list[IndexRow]) -> None:
        for row in rows:
            record(row, self.index, self.summary)
            self.bar.update(1)
        if rows:
            s = self.summary
            elapsed = self.bar.format_dict["elapsed"] or 1e-9
            self.bar.set_postfix(audio_h=f"{s.audio_seconds / 3600:.2f}",
                                 speed=f"{s.audio_seconds / elapsed:.1f}x realtime", failed=len(s.failed),
                                 refresh=False)
