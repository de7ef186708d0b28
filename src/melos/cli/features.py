"""`melos features`: extract and cache a probing task's features (every layer, per window)."""

from __future__ import annotations

import argparse
import sys

from .options import add_allow_truncated, add_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "features", help="extract and cache probing features of a task (every layer, per window)",
        description="Extract every hidden state, mean-pooled per window, for every split of a probing task, "
                    "into a cache keyed by the model's weights and the task's data. Interrupt and rerun to "
                    "resume; unreadable files are reported and skipped.")
    p.add_argument("--model", required=True, help="preset, checkpoint directory or cached hub id")
    p.add_argument("--task", required=True, help="task YAML file (name, type, manifest, window)")
    p.add_argument("--cache", default="cache/features", help="cache root (default cache/features)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    add_allow_truncated(p, "that part's features are cached (later `melos probe` runs reuse them)")
    add_progress(p)


def run(model: str, task: str, cache: str, **kwargs) -> int:
    from ..evaluation.features import extract_features
    from ..evaluation.tasks import load_task

    loaded = load_task(task)
    folder, summary = extract_features(model, loaded, cache, **kwargs)
    print(f"{loaded.name}: features of {summary.n_done + summary.n_skipped} files in {folder} "
          f"({summary.n_skipped} cached earlier), {len(summary.failed)} skipped as unreadable")
    for reason in summary.failed.values():
        print(f"  skipped: {reason}", file=sys.stderr)
    return 0
