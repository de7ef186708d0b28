"""Probing tasks: a small YAML file plus a JSONL manifest with a split and labels per item.

    name: pitch
    type: multiclass          # multilabel | multiclass | regression | key
    manifest: data/pitch.jsonl  # relative to the task file, or absolute
    window: 30                # seconds; hop defaults to window

Optional: `hop`, `vocabulary` (list) or `top_k` (int, counted on the training split, ties
broken alphabetically), `max_duration` (first N seconds), `metrics`, `targets` (regression).
A vocabulary counted on the training split cannot hold a label that only valid or test items
carry: such labels cannot be learned or scored, so they are dropped (a multiclass item with one
goes with it) and listed in `Task.dropped_labels`. A label outside an explicit `vocabulary` is an
error instead, most likely a typo.
Manifest rows: {"path": ..., "split": "train" | "valid" | "test", "labels": ...} where labels
is a list of tags (multilabel), one class (multiclass), floats (regression) or a mir_eval key
name such as "C# minor" (key).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import check_keys, read_yaml
from .metrics import KEY_LABELS

log = logging.getLogger(__name__)
TASK_TYPES = ("multilabel", "multiclass", "regression", "key")
SPLITS = ("train", "valid", "test")


@dataclass
class TaskItem:
    path: str
    split: str
    labels: Any


@dataclass
class Task:
    name: str
    type: str
    manifest: Path
    window: float
    hop: float | None = None
    vocabulary: list[str] | None = None
    top_k: int | None = None
    max_duration: float | None = None
    metrics: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    items: list[TaskItem] = field(default_factory=list, repr=False)
    # split -> label -> number of items that carried it: labels no training item has, dropped
    dropped_labels: dict[str, dict[str, int]] = field(default_factory=dict)

    def split(self, name: str) -> list[TaskItem]:
        return [item for item in self.items if item.split == name]

    def encode(self, items: list[TaskItem]) -> torch.Tensor:
        """Targets of `items`: [N, L] multi-hot, [N] class index, [N, D] floats, or [N] key index."""
        vocab = {v: i for i, v in enumerate(self.vocabulary or [])}
        if self.type == "multilabel":
            out = torch.zeros(len(items), len(vocab))
            for n, item in enumerate(items):
                out[n, [vocab[t] for t in item.labels if t in vocab]] = 1.0
            return out
        if self.type == "multiclass":
            return torch.tensor([vocab[item.labels] for item in items])
        if self.type == "key":
            return torch.tensor([KEY_LABELS.index(item.labels) for item in items])
        return torch.tensor([item.labels for item in items], dtype=torch.float32)


def load_task(path: str | Path) -> Task:
    """Read and validate a task file and its manifest; every problem names the file and row."""
    path = Path(path)
    spec = read_yaml(path, "task file")
    check_keys(spec, Task, str(path), ignore={"items", "dropped_labels"})  # both derived from the manifest
    if spec["type"] not in TASK_TYPES:
        raise ValueError(f"{path}: type must be one of {', '.join(TASK_TYPES)}, got {spec['type']!r}")
    manifest = Path(spec["manifest"]).expanduser()
    task = Task(**{**spec, "manifest": manifest if manifest.is_absolute() else path.parent / manifest})
    task.items = _read_items(task)
    for split in SPLITS:
        if not task.split(split):
            raise ValueError(f"{task.manifest}: the {split!r} split is missing or empty")
    if task.type in ("multilabel", "multiclass") and task.vocabulary is None:
        task.vocabulary = _vocabulary(task)
        _drop_unseen_labels(task)
    _check_labels(task)
    return task


def _read_items(task: Task) -> list[TaskItem]:
    items = []
    try:
        lines = task.manifest.read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{task.manifest}: manifest not found") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = TaskItem(str(row["path"]), row["split"], row["labels"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{task.manifest}:{n}: expected path, split and labels ({err})") from None
        if item.split not in SPLITS:
            raise ValueError(f"{task.manifest}:{n}: split must be train, valid or test, got {item.split!r}")
        if not Path(item.path).is_absolute():
            item.path = str(task.manifest.parent / item.path)
        items.append(item)
    return items


def _vocabulary(task: Task) -> list[str]:
    """All labels of the training split, or its top_k most frequent (ties alphabetical)."""
    counts: Counter[str] = Counter()
    for item in task.split("train"):
        counts.update(item.labels if task.type == "multilabel" else [item.labels])
    ranked = sorted(counts, key=lambda label: (-counts[label], label))
    return ranked[: task.top_k] if task.top_k else sorted(ranked)


def _drop_unseen_labels(task: Task) -> None:
    """Remove labels that no training item has from the valid and test items (a multiclass item
    with such a label is removed), record them in `task.dropped_labels` and say so once."""
    seen = {t for item in task.split("train") for t in (item.labels if task.type == "multilabel" else [item.labels])}
    dropped: dict[str, Counter[str]] = {}
    kept = []
    for item in task.items:
        labels = item.labels if task.type == "multilabel" else [item.labels]
        unseen = [t for t in labels if t not in seen] if isinstance(labels, list) else []
        dropped.setdefault(item.split, Counter()).update(set(unseen))
        if task.type == "multilabel" and unseen:
            item.labels = [t for t in labels if t in seen]
        if not (task.type == "multiclass" and unseen):
            kept.append(item)
    task.items = kept
    task.dropped_labels = {split: dict(sorted(c.items())) for split, c in dropped.items() if c}
    for split, counts in task.dropped_labels.items():
        what = "items dropped" if task.type == "multiclass" else "items touched"
        listing = ", ".join(f"{label!r} ({n})" for label, n in counts.items())
        log.warning("task %s: %s split: labels that no training item has are dropped: %s [%s]",
                    task.name, split, listing, what)
    for split in SPLITS:
        if not task.split(split):
            raise ValueError(f"{task.manifest}: the {split!r} split is empty once labels that no training item has "
                             f"are dropped ({task.dropped_labels.get(split)})")


def _check_labels(task: Task) -> None:
    vocab = set(task.vocabulary or [])
    for n, item in enumerate(task.items, start=1):
        where = f"{task.manifest}: item {n} ({item.path})"
        if task.type == "multiclass" and item.labels not in vocab:
            raise ValueError(f"{where}: label {item.labels!r} is not in the vocabulary")
        if task.type == "multilabel":
            if not isinstance(item.labels, list):
                raise ValueError(f"{where}: multilabel labels must be a list")
            if task.top_k is None and (outside := [t for t in item.labels if t not in vocab]):
                raise ValueError(f"{where}: label(s) {outside} not in the vocabulary")
        if task.type == "key" and item.labels not in KEY_LABELS:
            raise ValueError(f"{where}: {item.labels!r} is not a mir_eval key name such as 'C# minor' or 'X'")
        if task.type == "regression":
            values = item.labels if isinstance(item.labels, list) else None
            if not values or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ValueError(f"{where}: regression targets must be a list of finite numbers, got {item.labels!r}")
