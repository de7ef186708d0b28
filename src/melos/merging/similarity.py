"""How alike are the adaptations? Pairwise cosine similarity of task vectors, over the whole
model and per group (front end, each block, ...), streamed one tensor at a time.

The CultureMERT paper reports about 0.39-0.42 between cultures: related, far from orthogonal.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from ..utils.atomic import write_text
from ..utils.markdown import markdown_table
from ..utils.plotting import pyplot, save_figure
from .executor import task_vectors, open_inputs
from .keys import group_of, selected
from .methods import CosineAccumulator


def labels(paths: list[str | Path]) -> list[str]:
    """Short, unique names for models: the folder name, with its parent when that is ambiguous."""
    names = [Path(p).expanduser().name for p in paths]
    return [f"{Path(p).expanduser().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names)]


def task_vector_similarity(base: str | Path, models: list[str | Path], include: list[str] | None = None,
                           exclude: list[str] | None = None, progress: bool = True) -> dict:
    """{"models": names, "whole": [N][N], "groups": {group: [N][N]}} of cosine similarities."""
    inputs = open_inputs(base, models)
    ref = inputs[0]
    names = [n for n in ref.shapes if ref.dtypes[n].is_floating_point and selected(n, include, exclude)]
    whole, groups = CosineAccumulator(len(models)), {}
    for name in tqdm(names, desc="task vectors", unit="tensor", disable=not progress or None):
        taus = task_vectors(inputs, name)[1]
        whole.add(taus)
        groups.setdefault(group_of(name), CosineAccumulator(len(models))).add(taus)
    return {"models": labels(models), "whole": whole.matrix().tolist(),
            "groups": {g: acc.matrix().tolist() for g, acc in groups.items()}}


def _block_order(group: str) -> tuple[int, int | str]:
    kind, _, index = group.partition(".")
    order = ["cnn", "projection", "pos_conv", "block", "final_norm", "heads", "other"]
    return (order.index(kind) if kind in order else len(order), int(index) if index.isdigit() else 0)


def write_similarity(result: dict, out: str | Path) -> list[Path]:
    """similarity.json, similarity.md (the matrix), similarity.png (heat map) and
    similarity_groups.png (each pair's similarity per group, front end to last block)."""
    plt = pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names, matrix = result["models"], result["whole"]
    write_text(out / "similarity.json", json.dumps(result, indent=2))
    rows = [[a, *(f"{v:.3f}" for v in matrix[i])] for i, a in enumerate(names)]
    write_text(out / "similarity.md", markdown_table(["task vector", *names], rows) + "\n")

    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{matrix[i][j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="cosine similarity")
    ax.set_title("task-vector similarity (whole model)")
    save_figure(fig, out / "similarity.png")

    groups = sorted(result["groups"], key=_block_order)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(groups) + 2), 4))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            ax.plot(range(len(groups)), [result["groups"][g][i][j] for g in groups], marker="o",
                    label=f"{names[i]} / {names[j]}")
    ax.set_xticks(range(len(groups)), groups, rotation=60, ha="right")
    ax.set_ylabel("cosine similarity")
    ax.set_title("task-vector similarity per group")
    ax.legend(fontsize=7)
    save_figure(fig, out / "similarity_groups.png")
    return [out / n for n in ("similarity.json", "similarity.md", "similarity.png", "similarity_groups.png")]
