"""`melos report`: merge probing results into one table and draw the plots people look at.

- `table.md`: models x (task, metric), mean ± std over seeds, then for each paper's suite that a
  merged run came from (`melos probe --suite`), that suite's table beside the published numbers;
- `layers_<task>.png`: score vs layer, one line per model (for each layer, the learning rate
  chosen on validation; the score shown is test's primary metric);
- `heatmap.png`: model x task, primary test metric.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..utils.atomic import write_text
from ..utils.plotting import pyplot, save_figure
from .protocol import results_table
from .suites import suite_table


def merge_results(paths: list[str | Path]) -> dict:
    """Union of several results.json files; a later file wins for the same (model, task)."""
    merged: dict = {"runs": {}, "summary": {}, "suites": []}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a readable results.json ({err})") from None
        for model, runs in data.get("runs", {}).items():
            for task, run in runs.items():
                merged["runs"].setdefault(model, {})[task] = run
                merged["summary"].setdefault(model, {})[task] = run["test"]
        merged["suites"] += [s for s in data.get("suites", []) if s not in merged["suites"]]
    if not merged["runs"]:
        raise ValueError("no probing results in the given files")
    return merged


def layer_curve(run: dict) -> tuple[list[int], list[float]]:
    """Per single layer: the test primary score of the lr that is best on validation."""
    best: dict[int, dict] = {}
    for member in run["grid"]:
        layer = member["layer"]
        if layer != "weighted" and (layer not in best or member["valid"] > best[layer]["valid"]):
            best[layer] = member
    layers = sorted(best)
    return layers, [best[layer]["test"][run["primary"]] for layer in layers]


def write_report(results: dict, out: str | Path) -> list[Path]:
    """Table and plots into `out`; returns the files written."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "table.md"]
    suites = "".join(f"\n## {suite} suite\n\n{suite_table(suite, results['summary'])}\n"
                     for suite in results.get("suites", []))
    write_text(written[0], results_table(results["summary"]) + suites)
    tasks = sorted({task for runs in results["runs"].values() for task in runs})
    models = list(results["runs"])
    for task in tasks:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for model in models:
            run = results["runs"][model].get(task)
            if run:
                layers, scores = layer_curve(run)
                ax.plot(layers, [100 * s for s in scores], marker="o", label=model)
                primary = run["primary"]
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # hidden states are whole layers
        ax.set(xlabel="layer (hidden-state index)", ylabel=f"test {primary} (x100)", title=task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        written.append(save_figure(fig, out / f"layers_{task}.png"))
    grid = [[100 * results["runs"][m][t]["test"][results["runs"][m][t]["primary"]]["mean"]
             if t in results["runs"][m] else float("nan") for t in tasks] for m in models]
    fig, ax = plt.subplots(figsize=(3.0 + 1.2 * len(tasks), 1.4 + 0.5 * len(models)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    low, high = image.get_clim()
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            bright = value > (low + high) / 2  # dark text on the bright end of viridis
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="k" if bright else "w", fontsize=9)
    fig.colorbar(image, ax=ax, label="test score (x100)")
    written.append(save_figure(fig, out / "heatmap.png"))
    return written
