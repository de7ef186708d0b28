"""The two papers' evaluation suites: which tasks, from which dataset folders, against which
published numbers (`melos probe --suite`).

    --data-root DIR -> DIR/<folder> per task (missing ones are skipped and listed)
                    -> `melos data task`'s reader -> tasks in OUT/tasks/
                    -> the probing protocol -> suite.md: the paper's layout, the published
                       MERT-v1-95M number beside each result, and the difference

References are x100, as the papers print them (spec sections 5 and 7): CultureMERT's Table 4.1
(ROC-AUC / AP) and MARBLE's MERT-v1-95M numbers for the downstream suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..utils.markdown import markdown_table
from .datasets import READERS, write_task
from .tasks import Task, load_task


@dataclass(frozen=True)
class SuiteTask:
    """One row of a suite: the reader (a `READERS` name), its folder under the data root, the
    metrics the paper reports and the published MERT-v1-95M values of those metrics (x100)."""

    reader: str
    folder: str
    metrics: tuple[str, ...]
    reference: tuple[float, ...]


SUITES: dict[str, list[SuiteTask]] = {
    "culturemert": [
        SuiteTask("makam", "makam", ("roc_auc", "ap"), (83.2, 53.3)),
        SuiteTask("saraga-hindustani", "saraga1.5_hindustani", ("roc_auc", "ap"), (82.4, 52.9)),
        SuiteTask("saraga-carnatic", "saraga1.5_carnatic", ("roc_auc", "ap"), (74.9, 39.7)),
        SuiteTask("lyra", "lyra", ("roc_auc", "ap"), (85.7, 56.5)),
        SuiteTask("fma-medium", "fma", ("roc_auc", "ap"), (90.7, 48.1)),
        SuiteTask("magnatagatune", "magnatagatune", ("roc_auc", "ap"), (89.6, 35.9)),
    ],
    "efficient": [
        SuiteTask("magnatagatune", "magnatagatune", ("roc_auc", "ap"), (91.0, 39.3)),
        SuiteTask("giantsteps-mtg-key", "giantsteps", ("weighted_score",), (63.5,)),
        SuiteTask("gtzan", "gtzan", ("accuracy",), (74.8,)),
        SuiteTask("emomusic", "emomusic", ("r2/valence", "r2/arousal"), (55.5, 76.3)),
        SuiteTask("nsynth-instrument", "nsynth", ("accuracy",), (70.7,)),
        SuiteTask("nsynth-pitch", "nsynth", ("accuracy",), (92.6,)),
        SuiteTask("vocalset-technique", "vocalset", ("accuracy",), (74.2,)),
        SuiteTask("vocalset-singer", "vocalset", ("accuracy",), (83.7,)),
    ],
}
REFERENCE_MODEL = "MERT-v1-95M"


def prepare_suite(suite: str, data_root: str | Path, out: str | Path) -> tuple[list[Task], list[str]]:
    """Write the tasks of `suite` whose dataset folder exists under `data_root` into `out/tasks/`;
    returns them and one line per task left out (its missing folder)."""
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {suite!r}")
    tasks, missing = [], []
    for item in SUITES[suite]:
        root = Path(data_root).expanduser() / item.folder
        if not root.is_dir():
            missing.append(f"{item.reader}: no folder {root}")
            continue
        reader = READERS[item.reader]
        tasks.append(load_task(write_task(reader.read(root), Path(out) / "tasks", item.reader, reader.task_type,
                                          **reader.options)))
    return tasks, missing


def suite_table(suite: str, summary: dict[str, dict[str, dict]]) -> str:
    """Markdown table in the paper's layout: per task and metric, each model's test mean x100, the
    published MERT-v1-95M value and each model's difference from it."""
    models = list(summary)
    header = ["task", "metric", *models, REFERENCE_MODEL + " (published)", *[f"{m} - published" for m in models]]
    rows = []
    for item in SUITES[suite]:
        for metric, reference in zip(item.metrics, item.reference):
            values = [summary[m].get(item.reader, {}).get(metric, {}).get("mean") for m in models]
            cells = [f"{100 * v:.1f}" if v is not None else "-" for v in values]
            diffs = [f"{100 * v - reference:+.1f}" if v is not None else "-" for v in values]
            rows.append([item.reader, metric, *cells, f"{reference:.1f}", *diffs])
    return markdown_table(header, rows)
