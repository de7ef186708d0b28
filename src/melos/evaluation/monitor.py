"""A probe of the encoder as it is now, for watching representations during training."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from ..models import Encoder
from .features import extract_features
from .probe import ProbeConfig
from .protocol import probe_task
from .tasks import load_task


def probe_monitor(task_file: str | Path, encoder: Encoder, device: str, epochs: int = 20,
                  seeds: int = 1) -> Callable[[], dict[str, float]]:
    """A callable that probes `encoder` (its current weights) on the task and returns
    {"monitor/TASK/METRIC": mean test score}; features go to a temporary cache each time."""
    task = load_task(Path(task_file).expanduser())

    def monitor() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as tmp:
            folder, _ = extract_features(encoder, task, tmp, device=device, progress=False)
            run = probe_task(folder, task, ProbeConfig(task.type, max_epochs=epochs), seeds=seeds)
        return {f"monitor/{task.name}/{run['primary']}": run["test"][run["primary"]]["mean"]}

    return monitor
