"""`melos data scan` (a training manifest from a folder) and `melos data task` (a probing task
from a dataset's official metadata)."""

from __future__ import annotations

import argparse
import sys
import warnings
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

    q = data.add_parser("synth", help="generate a labelled synthetic corpus (four traditions, every note known)",
                        description="Render the synthetic corpus of four musical traditions (western, makam, raga, "
                                    "greek; see melos.data.synth): OUT/<tradition>/<tradition>-<i>.flac at 24 kHz and "
                                    "OUT/manifest.jsonl with splits, tags and, under `meta`, every part's note and "
                                    "drum-hit onsets to the sample: ground truth for onsets, beats and tagging. The "
                                    "same seed gives byte-identical files.")
    q.add_argument("out", help="folder to write")
    q.add_argument("--clips", type=int, default=40, help="clips per tradition (default 40)")
    q.add_argument("--seconds", type=float, default=5.0, help="clip length in seconds (default 5)")
    q.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    add_progress(q)

    q = data.add_parser("task", help="write a probing task (YAML + JSONL) from a dataset's official metadata")
    q.add_argument("dataset", choices=sorted(READERS), help="which dataset layout ROOT holds")
    q.add_argument("root", help="the dataset's folder, as distributed")
    q.add_argument("--out", required=True, help="folder for <dataset>.yaml and <dataset>.jsonl")


def run(data_command: str, **kwargs) -> int:
    return {"scan": scan, "synth": synth, "task": task}[data_command](**kwargs)


def synth(out: str, clips: int, seconds: float, seed: int, progress: bool) -> int:
    from ..data.synth import write_corpus

    if clips < 1 or seconds <= 0:
        raise ValueError(f"--clips must be at least 1 and --seconds positive, got {clips} and {seconds:g}")
    manifest = write_corpus(out, clips, seconds, seed, progress=progress)
    print(f"{4 * clips} clips of {seconds:g} s -> {manifest}")
    return 0


def scan(out: str, **kwargs) -> int:
    from ..data.manifest import scan_folder, write_manifest

    result = scan_folder(**kwargs)
    write_manifest(result.rows, out)
    print(f"{len(result.rows)} files, {result.hours:.2f} h -> {out}; {len(result.failed)} unreadable")
    for path, reason in result.failed.items():
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 0


def task(dataset: str, root: str, out: str) -> int:
    from ..evaluation.dataset_files import MissingAudioWarning, count_gaps, summary
    from ..evaluation.datasets import write_task

    reader = READERS[dataset]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingAudioWarning)
        folder = Path(root).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"{root}: no such folder; give the {dataset} dataset's folder as distributed")
        rows = reader.read(folder)
    missing = 0
    for warning in caught:
        if issubclass(warning.category, MissingAudioWarning):
            missing += len(warning.message.paths)
            print(warning.message, file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    print(f"{dataset} in {root}: {summary(rows, missing)}")
    for gap in count_gaps(rows, reader.expected):
        print(f"warning: {dataset} {gap}", file=sys.stderr)
    path = write_task(rows, Path(out), dataset, reader.task_type, **reader.options)
    print(f"{len(rows)} items -> {path}")
    return 0
