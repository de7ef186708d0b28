"""Atomic writes: a file or folder appears under its name only once complete, so a reader or a
rerun after a crash never sees half of one.

Everything is written under a hidden temporary name beside the target (same file system, so the
final rename is atomic); the name is random, so processes and threads writing at once never share
one. On failure the temporary file or folder is removed and an existing target is left as it was.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _beside(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.{kind}")


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write the file to; it replaces `path` on success.

    For writers that want a path (safetensors, torch.save, soundfile, savefig): give them the
    format explicitly, as the temporary name ends in `.tmp`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _beside(path, "tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; it becomes `path` on success.

    An existing `path` is moved aside first and removed only once the new folder is in place
    (put back if the swap fails), so some complete version is always on disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _beside(path, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if not path.exists():
            tmp.rename(path)
            return
        old = _beside(path, "old")
        path.rename(old)
        try:
            tmp.rename(path)
        except BaseException:
            old.rename(path)
            raise
        shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
