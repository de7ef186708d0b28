"""The two papers' evaluation suites: which tasks, from which dataset folders, against which
published numbers (`melos probe --suite`).

    --data-root DIR -> DIR/<folder> per task (missing ones are skipped and listed)
                    -> `melos data task`'s reader -> tasks in OUT/tasks/
                    -> the probing protocol -> suite.md: the paper's layout, the published
                       MERT-v1-95M number beside each result, and the difference

References are x100, as the papers print them (spec sections 5 and 7): CultureMERT's Table 4.1
(ROC-AUC / AP of MERT-v1-95M), and for the downstream suite MARBLE's MERT-v1-95M numbers beside the
efficient-encoder paper's own MERT-330 row (its Table 3, same probe head as that paper's models).
A reference a paper does not report is None and shows as "-".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..utils.markdown import markdown_table
from .datasets import READERS, write_task
from .tasks import Task, load_task


@dataclass(frozen=True)
class SuiteTask:
    """One row group of a suite: the reader (a `READERS` name), its folder under the data root,
    the metrics the paper reports and, per reference model of the suite, the published values of
    those metrics (x100). `fallback` (reader, folder) is read when the folder is absent: a smaller
    public stand-in for the paper's dataset, whose scores are then not comparable."""

    reader: str
    folder: str
    metrics: tuple[str, ...]
    reference: tuple[tuple[float | None, ...], ...]
    fallback: tuple[str, str] | None = None

    def choices(self) -> list[tuple[str, str]]:
        """(reader, folder) pairs in the order they are tried."""
        return [(self.reader, self.folder), *([self.fallback] if self.fallback else [])]


REFERENCES: dict[str, tuple[str, ...]] = {
    "culturemert": ("MERT-v1-95M (CultureMERT)",),
    "efficient": ("MERT-v1-95M (MARBLE)", "MERT-330 (efficient paper)"),
}
SUITES: dict[str, list[SuiteTask]] = {
    "culturemert": [
        SuiteTask("makam", "makam", ("roc_auc", "ap"), ((83.2, 53.3),)),
        SuiteTask("dunya-hindustani", "hindustani", ("roc_auc", "ap"), ((82.4, 52.9),),
                  ("saraga-hindustani", "saraga1.5_hindustani")),
        SuiteTask("dunya-carnatic", "carnatic", ("roc_auc", "ap"), ((74.9, 39.7),),
                  ("saraga-carnatic", "saraga1.5_carnatic")),
        SuiteTask("lyra", "lyra", ("roc_auc", "ap"), ((85.7, 56.5),)),
        SuiteTask("fma-medium", "fma", ("roc_auc", "ap"), ((90.7, 48.1),)),
        SuiteTask("magnatagatune", "magnatagatune", ("roc_auc", "ap"), ((89.6, 35.9),)),
    ],
    "efficient": [
        SuiteTask("magnatagatune", "magnatagatune", ("roc_auc", "ap"), ((91.0, 39.3), (89.1, 43.2))),
        SuiteTask("mtg-jamendo-top50", "mtg-jamendo-dataset", ("roc_auc", "ap"), ((None, None), (78.6, 23.5))),
        SuiteTask("giantsteps-mtg-key", "giantsteps", ("weighted_score",), ((63.5,), (85.6,))),
        SuiteTask("gtzan", "gtzan", ("accuracy",), ((74.8,), (68.9,))),
        SuiteTask("mtg-jamendo-genre", "mtg-jamendo-dataset", ("roc_auc", "ap"), ((None, None), (81.6, 13.7))),
        SuiteTask("emomusic", "emomusic", ("r2/arousal", "r2/valence"), ((76.3, 55.5), (71.4, 41.3))),
        SuiteTask("nsynth-instrument", "nsynth", ("accuracy",), ((70.7,), (65.9,))),
        SuiteTask("mtg-jamendo-instrument", "mtg-jamendo-dataset", ("roc_auc", "ap"),
                  ((None, None), (71.7, 16.3))),
        SuiteTask("nsynth-pitch", "nsynth", ("accuracy",), ((92.6,), (92.8,))),
        SuiteTask("vocalset-technique", "vocalset", ("accuracy",), ((74.2,), (64.2,))),
        SuiteTask("vocalset-singer", "vocalset", ("accuracy",), ((83.7,), (90.5,))),
    ],
}


def prepare_suite(suite: str, data_root: str | Path, out: str | Path) -> tuple[list[Task], list[str]]:
    """Write the tasks of `suite` whose dataset folder exists under `data_root` into `out/tasks/`
    (a task's fallback when only its folder exists); returns them and one line per task left out
    (its missing folders)."""
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {suite!r}")
    tasks, missing = [], []
    for item in SUITES[suite]:
        found = [(name, Path(data_root).expanduser() / folder) for name, folder in item.choices()
                 if (Path(data_root).expanduser() / folder).is_dir()]
        if not found:
            folders = " nor ".join(str(Path(data_root).expanduser() / folder) for _, folder in item.choices())
            missing.append(f"{item.reader}: no folder {folders}")
            continue
        name, root = found[0]
        reader = READERS[name]
        tasks.append(load_task(write_task(reader.read(root), Path(out) / "tasks", name, reader.task_type,
                                          **reader.options)))
    return tasks, missing


def suite_table(suite: str, summary: dict[str, dict[str, dict]]) -> str:
    """Markdown table in the paper's layout: per task and metric, each model's test mean x100, the
    suite's published reference values and each model's difference from each of them."""
    models, references = list(summary), REFERENCES[suite]
    header = ["task", "metric", *models, *(f"{r} published" for r in references),
              *(f"{m} - {r}" for m in models for r in references)]
    rows = []
    for item in SUITES[suite]:
        ran = [name for name, _ in item.choices() if any(name in summary[m] for m in models)]
        name = ran[0] if ran else item.reader
        for i, metric in enumerate(item.metrics):
            values = [summary[m].get(name, {}).get(metric, {}).get("mean") for m in models]
            published = [ref[i] for ref in item.reference]
            cells = [f"{100 * v:.1f}" if v is not None else "-" for v in values]
            diffs = [f"{100 * v - p:+.1f}" if v is not None and p is not None else "-"
                     for v in values for p in published]
            rows.append([name, metric, *cells, *(f"{p:.1f}" if p is not None else "-" for p in published),
                         *diffs])
    return markdown_table(header, rows)
