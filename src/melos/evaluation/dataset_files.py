"""What every dataset reader shares: the reader record `melos data task` dispatches on, and
line-numbered reading of metadata files (so errors can name the line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank stripped lines with their 1-based numbers; a missing file is named in the error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


@dataclass(frozen=True)
class DatasetReader:
    """How `melos data task NAME` turns a dataset into a probing task."""

    read: Callable[[Path], list[dict]]
    task_type: str
    options: dict[str, Any] = field(default_factory=dict)  # extra task-file keys (top_k, window, ...)
