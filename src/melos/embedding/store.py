"""On-disk results of `melos embed`: one safetensors file per audio file plus `index.jsonl`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from ..utils.atomic import atomic_file

INDEX = "index.jsonl"
SUFFIX = ".safetensors"


@dataclass
class IndexRow:
    """One line of index.jsonl. `status` is "ok" or "error"; `error` says why a file failed."""

    path: str
    status: str
    output: str | None = None
    duration: float | None = None
    n_windows: int | None = None
    error: str | None = None


@dataclass
class Embeddings:
    """What one output file holds.

    Attributes:
        embeddings: float tensor [n_layers, n_windows, H] (pooled) or [n_layers, T, H] (frames
            of all windows, concatenated in window order).
        window_starts: seconds, [n_windows].
        window_frames: frames per window, [n_windows] (to split frame-level output).
        layers: hidden-state index of each row of `embeddings`, [n_layers].
        metadata: model, source path, rates, window settings (strings).
    """

    embeddings: torch.Tensor
    window_starts: torch.Tensor
    window_frames: torch.Tensor
    layers: torch.Tensor
    metadata: dict[str, str]

    def save(self, path: Path) -> None:
        """Atomic: written to a temp file in the same folder, then renamed."""
        tensors = {"embeddings": self.embeddings.contiguous(), "window_starts": self.window_starts,
                   "window_frames": self.window_frames, "layers": self.layers}
        with atomic_file(path) as tmp:
            save_file(tensors, tmp, metadata=self.metadata)

    @classmethod
    def load(cls, path: str | Path) -> "Embeddings":
        tensors = load_file(path)
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
        return cls(tensors["embeddings"], tensors["window_starts"], tensors["window_frames"], tensors["layers"],
                   metadata)


class Index:
    """Append-only index.jsonl: one row per finished file, flushed at once, so an interrupted
    run keeps every row it wrote. When a path appears twice, the last row wins."""

    def __init__(self, out_dir: Path, resume: bool):
        self.path = out_dir / INDEX
        self.rows: dict[str, IndexRow] = read_index(self.path) if resume else {}
        out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a" if resume else "w")

    def done(self, path: str, out_dir: Path) -> bool:
        """Whether `path` finished successfully in an earlier run and its output (a file, or a
        folder for `melos sense`) is still there."""
        row = self.rows.get(path)
        return row is not None and row.status == "ok" and row.output is not None and (out_dir / row.output).exists()

    def add(self, row: IndexRow) -> None:
        self.rows[row.path] = row
        self._file.write(json.dumps(asdict(row)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_index(path: Path) -> dict[str, IndexRow]:
    """Rows of an index.jsonl by path; a torn last line from a killed run is ignored."""
    rows: dict[str, IndexRow] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = IndexRow(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue
            rows[row.path] = row
    return rows


@dataclass
class RunSummary:
    """What a batch run over files did (`melos embed`, `melos sense`). `failed` maps each bad file to the reason."""

    out_dir: Path
    n_done: int = 0
    n_skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed
