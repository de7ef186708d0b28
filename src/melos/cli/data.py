"""`melos data scan` (a training manifest from a folder) and `melos data task` (a probing task
from a dataset's official metadata)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..evaluation.datasets import READERS
from .options import add_allow_truncated, add_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("data", help="build and inspect training data manifests",
                            description="Data tools. `melos data scan FOLDER --out M.jsonl` lists every audio "
                                        "file below FOLDER with its duration (headers and the last few KB only, "
                                        "no decoding).")
    data = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    q = data.add_parser("scan", help="write a JSONL manifest (path, duration, source, culture) for a folder")
    q.add_argument("folder", help="folder to scan recursively")
    q.add_argument("--out", required=True, help="manifest to write (JSONL)")
    q.add_argument("--source", default=None, help="source name for every row (default: the folder's name)")
    q.add_argument("--culture", default=None, help="culture/tradition label for every row, e.g. turkish-makam")
    add_allow_truncated(q, "listed with the duration present")
    add_progress(q)

    q = data.add_parser("task", help="write a probing task (YAML + JSONL) from a dataset's official metadata")
    q.add_argument("dataset", choices=sorted(READERS), help="which dataset layout ROOT holds")
    q.add_argument("root", help="the dataset's folder, as distributed")
    q.add_argument("--out", required=True, help="folder for <dataset>.yaml and <dataset>.jsonl")


def run(data_command: str, **kwargs) -> int:
    return scan(**kwargs) if data_command == "scan" else task(**kwargs)


def scan(out: str, **kwargs) -> int:
    from ..data.manifest import scan_folder, write_manifest

    result = scan_folder(**kwargs)
    write_manifest(result.rows, out)
    print(f"{len(result.rows)} files, {result.hours:.2f} h -> {out}; {len(result.failed)} unreadable")
    for path, reason in result.failed.items():
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 0


def task(dataset: str, root: str, out: str) -> int:
    from ..evaluation.datasets import write_task

    reader = READERS[dataset]
    rows = reader.read(Path(root).expanduser())
    path = write_task(rows, Path(out), dataset, reader.task_type, **reader.options)
    print(f"{len(rows)} items -> {path}")
    return 0
