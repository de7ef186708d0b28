"""`melos merge sweep`: task arithmetic at several lambdas, each merged model probed.

The choice of lambda is made on validation scores only; test scores are what is reported
(the CultureMERT paper sweeps {0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0}; 0.2 wins, 1.0 loses).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

from ..evaluation.probe import ProbeConfig
from ..evaluation.protocol import run_probes
from ..evaluation.tasks import Task
from ..utils.atomic import write_text
from ..utils.markdown import markdown_table
from ..utils.plotting import pyplot, save_figure
from .executor import MergeSpec, merge

LAMBDAS = (0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0)


def sweep(base: str | Path, models: list[str | Path], tasks: list[Task], out: str | Path,
          config_for: Callable[[Task], ProbeConfig], lambdas: tuple[float, ...] = LAMBDAS, seeds: int = 5,
          cache: str | Path | None = None, spec: MergeSpec | None = None, device: str = "cpu",
          progress: bool = True) -> dict:
    """Merge at each lambda into OUT/ta-<lambda> (kept when already there), probe, and write
    sweep.json, sweep.md and sweep.png. Returns {"lambdas", "tasks": {task: {"valid", "test"}}, "best"}."""
    out = Path(out)
    spec = spec or MergeSpec()
    folders = []
    for value in lambdas:
        folder = out / f"ta-{value:g}"
        if not (folder / "merge.json").is_file():
            merge(base, models, dataclasses.replace(spec, method="task_arithmetic", weights=[value]), folder, progress)
        folders.append(str(folder))
    results = run_probes(folders, tasks, out / "probe", cache or out / "cache", config_for, seeds, device, progress)
    table: dict = {"lambdas": list(lambdas), "tasks": {}, "best": {}}
    for task in tasks:
        runs = [results["runs"][f][task.name] for f in folders]
        primary = runs[0]["primary"]
        valid = [r["chosen"]["valid"] for r in runs]
        table["tasks"][task.name] = {"metric": primary, "valid": valid,
                                     "test": [r["test"][primary] for r in runs]}
        table["best"][task.name] = lambdas[max(range(len(lambdas)), key=valid.__getitem__)]
    write_text(out / "sweep.json", json.dumps(table, indent=2))
    write_text(out / "sweep.md", _markdown(table))
    _plot(table, out / "sweep.png")
    return table


def _markdown(table: dict) -> str:
    tasks = list(table["tasks"])
    rows = []
    for i, value in enumerate(table["lambdas"]):
        cells = []
        for t in tasks:
            score = table["tasks"][t]["test"][i]
            mark = " (chosen on valid)" if table["best"][t] == value else ""
            cells.append(f"{100 * score['mean']:.1f} ± {100 * score['std']:.1f}{mark}")
        rows.append([f"{value:g}", *cells])
    header = ["lambda", *(f"{t} {table['tasks'][t]['metric']} (test)" for t in tasks)]
    return markdown_table(header, rows) + "\n"


def _plot(table: dict, path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for task, row in table["tasks"].items():
        mean = [s["mean"] for s in row["test"]]
        std = [s["std"] for s in row["test"]]
        line = ax.errorbar(table["lambdas"], mean, yerr=std, marker="o", capsize=3, label=f"{task} (test)")
        ax.plot(table["lambdas"], row["valid"], linestyle="--", color=line[0].get_color(), alpha=0.6,
                label=f"{task} (valid)")
    ax.set_xlabel("lambda")
    ax.set_ylabel("primary metric")
    ax.set_title("task arithmetic: lambda sweep")
    ax.legend(fontsize=8)
    save_figure(fig, path)
