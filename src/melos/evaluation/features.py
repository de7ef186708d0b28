"""Feature cache for probing: every hidden state, mean-pooled per window, extracted once.

The cache lives in `ROOT/<model hash>-<task data hash>/` and is filled by `melos.embed`, so it
is resumable (files already done are kept), reports bad files and skips them, and writes each
file atomically. The key covers the model's weights, the task's manifest and the window
settings, so a changed model or task never reads stale features.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.sources import AudioSource
from ..embedding import RunSummary, Embeddings, embed, read_index
from ..models import Encoder, load_encoder
from ..utils.atomic import write_text
from .tasks import Task

FEATURES_VERSION = "1"


def model_hash(encoder: Encoder) -> str:
    """sha256 over the weights (names, shapes, dtypes and bytes), 16 hex digits."""
    h = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def task_hash(task: Task) -> str:
    h = hashlib.sha256(task.manifest.read_bytes())
    h.update(json.dumps([FEATURES_VERSION, task.window, task.hop, task.max_duration]).encode())
    return h.hexdigest()[:16]


@dataclass
class SplitFeatures:
    """Window-level features of one split and the track each window belongs to."""

    features: torch.Tensor  # [n_layers, n_windows, H]
    groups: torch.Tensor  # [n_windows], index of the track in `tracks`
    tracks: list[str]  # paths of the tracks that have features
    targets: torch.Tensor  # track-level targets, task.encode order of `tracks`


def extract_features(model: str | Path | Encoder, task: Task, cache_root: str | Path = "cache/features", *,
                     device: str = "cpu", batch_size: int = 8, allow_truncated: bool = False,
                     progress: bool = True) -> tuple[Path, RunSummary]:
    """Fill (or resume) the cache of `task` for `model`; returns its folder and the run summary.
    Windows of equal length go through the encoder `batch_size` at a time (8: a third faster than
    one at a time for the quickstart's tiny model). `allow_truncated` keeps what decodes of files
    cut short (see `melos.embed`); a file failed as truncated is retried by the next call."""
    encoder = load_encoder(model) if isinstance(model, (str, Path)) else model
    weights = model_hash(encoder)  # reads every weight: once per call
    folder = Path(cache_root) / f"{weights}-{task_hash(task)}"
    write_text(folder / "cache.json", json.dumps({"model": type(model).__name__ if isinstance(model, Encoder)
                                                  else str(model), "model_hash": weights, "task": task.name,
                                                  "manifest": str(task.manifest)}, indent=2))
    sources = [AudioSource(Path(item.path), f"{n:06d}-{Path(item.path).name}") for n, item in enumerate(task.items)]
    summary = embed(encoder, sources, folder, window=task.window, hop=task.hop, max_duration=task.max_duration,
                    device=device, batch_size=batch_size, skip_existing=True, allow_truncated=allow_truncated,
                    progress=progress)
    return folder, summary


def load_split(folder: str | Path, task: Task, split: str) -> SplitFeatures:
    """Features of `split` from a filled cache; items that failed extraction are left out."""
    folder = Path(folder)
    rows = read_index(folder / "index.jsonl")
    feats, groups, tracks, items = [], [], [], []
    for item in task.split(split):
        row = rows.get(item.path)
        if row is None or row.status != "ok":
            continue
        emb = Embeddings.load(folder / row.output).embeddings  # (n_layers, n_windows, H)
        feats.append(emb)
        groups.append(torch.full((emb.shape[1],), len(tracks)))
        tracks.append(item.path)
        items.append(item)
    if not feats:
        raise ValueError(f"{folder}: no features for the {split!r} split of task {task.name!r}; run `melos features`")
    return SplitFeatures(torch.cat(feats, dim=1), torch.cat(groups), tracks, task.encode(items))
