"""The quickstart's report: report.md with the tables and the plots the CultureMERT paper shows,
every figure computed by this run."""

from __future__ import annotations

import json
from pathlib import Path

from ..audio import load
from ..data.synth import TRADITIONS
from ..evaluation.protocol import results_table
from ..evaluation.report import write_report as write_probe_report
from ..evaluation.token_similarity import corpus_similarity, token_histogram
from ..training.run import Tokenizer
from ..utils.atomic import write_text
from ..utils.markdown import markdown_table
from ..utils.plotting import pyplot, save_figure
from .claims import FORGETTING, check_line, describe, summary, tally
from .config import WESTERN, QuickstartConfig


def token_similarity(data: Path, teacher: Tokenizer, max_clips: int = 40) -> dict:
    """JSD and cosine distance between traditions of the frozen acoustic teacher's tokens (the
    one the western model was pre-trained with), on up to `max_clips` training clips each."""
    histograms = {}
    for tradition in TRADITIONS:
        rows = [json.loads(line) for line in (data / f"train-{tradition}.jsonl").read_text().splitlines()]
        clips = [load(r["path"], teacher.sample_rate)[None] for r in rows[:max_clips]]
        histograms[tradition] = token_histogram(teacher, clips, teacher.codebook_size)
    return corpus_similarity(histograms)


def tag_groups(corpus_manifest: Path) -> dict[str, str]:
    """Each tag of the corpus and what it describes: `mode`, `metre` or `instruments`."""
    groups = {}
    for line in corpus_manifest.read_text().splitlines():
        meta = json.loads(line)["meta"]
        groups |= {meta["mode"]: "mode", meta["metre"]: "metre"} | dict.fromkeys(meta["instruments"], "instruments")
    return groups


def group_auc(probe: Path, runs: dict[str, dict], vocabularies: dict[str, list[str]],
              groups: dict[str, str]) -> dict[str, dict[str, dict[str, float]]]:
    """Test ROC-AUC of each tag group per model and task (macro over the group's tags, mean over
    probe seeds), from the saved test outputs: which part of a tradition the encoders represent.
    Tags at chance add noise of their own to the task's macro ROC-AUC."""
    from safetensors.torch import load_file

    from ..evaluation.metrics import roc_auc_per_tag

    table: dict[str, dict[str, dict[str, float]]] = {}
    for model, tasks in runs.items():
        for task, run in tasks.items():
            saved = load_file(probe / run["test_outputs"])
            per_tag = roc_auc_per_tag(saved["outputs"], saved["targets"]).nanmean(0)  # [tags]
            by_group: dict[str, list[float]] = {}
            for tag, auc in zip(vocabularies[task], per_tag.tolist()):
                if auc == auc:  # tags without positives or negatives in the test split have none
                    by_group.setdefault(groups[tag], []).append(auc)
            table.setdefault(model, {})[task] = {g: sum(v) / len(v) for g, v in sorted(by_group.items())}
    return table


def _matrix_md(rows: list[str], columns: list[str], matrix: list[list[float]], corner: str) -> str:
    return markdown_table([corner, *columns], [[a, *(f"{v:.3f}" for v in row)] for a, row in zip(rows, matrix)])


def _groups_md(groups: dict[str, dict[str, dict[str, float]]]) -> str:
    order = ("mode", "metre", "instruments")
    rows = [[model, *(" / ".join(f"{tasks[t][g]:.2f}" if g in tasks[t] else "-" for g in order) for t in TRADITIONS)]
            for model, tasks in groups.items()]
    return markdown_table(["model", *TRADITIONS], rows)


SMOOTHING = 25  # steps in the training curves' moving average


def moving_average(values: list[float], width: int) -> list[float]:
    """Mean of each value and the up to `width - 1` before it (a trailing window, so the first
    steps average what exists): as long as `values`."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= width:
            total -= values[i - width]
        out.append(total / min(i + 1, width))
    return out


def _plots(out: Path, results: dict, tokens: dict, cfg: QuickstartConfig) -> None:
    plt = pyplot()
    figures = out / "figures"
    fig, ax = plt.subplots(figsize=(6, 4))
    for task in TRADITIONS:
        ax.plot(cfg.lambdas, [results["models"][f"ta-{lam:g}"][task]["roc_auc"]["mean"] for lam in cfg.lambdas],
                marker="o", label=task)
    ax.set(xlabel="lambda", ylabel="test ROC-AUC", title="task arithmetic of the single-tradition models")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, figures / "lambda.png")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, title in zip(axes, ("jsd", "cosine_distance"), ("Jensen-Shannon divergence", "cosine distance")):
        image = ax.imshow(tokens[key], cmap="magma")
        ax.set_xticks(range(len(tokens["corpora"])), tokens["corpora"], rotation=30, ha="right")
        ax.set_yticks(range(len(tokens["corpora"])), tokens["corpora"])
        ax.set_title(f"teacher tokens: {title}")
        fig.colorbar(image, ax=ax)
    save_figure(fig, figures / "tokens.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name in [WESTERN, *[t for t in TRADITIONS if t != WESTERN], "multi"]:
        rows = [json.loads(line) for line in (out / "runs" / name / "metrics.jsonl").read_text().splitlines()]
        ax = axes[0] if name == WESTERN else axes[1]
        loss = [r["loss"] for r in rows]
        line = ax.plot(range(len(rows)), loss, linewidth=0.6, alpha=0.25)  # raw per-step losses, faint
        ax.plot(range(len(rows)), moving_average(loss, SMOOTHING), color=line[0].get_color(), label=name,
                linewidth=1.4)
        stages = [r["stage"] for r in rows]
        for i in range(1, len(stages)):
            if stages[i] != stages[i - 1]:
                ax.axvline(i, color=line[0].get_color(), linestyle=":", linewidth=0.8)
    axes[0].set(title="pre-training from scratch (western)", xlabel="optimizer step",
                ylabel=f"loss ({SMOOTHING}-step moving average)")
    axes[1].set(title="continual pre-training (dotted: stage 1 -> stage 2)", xlabel="optimizer step")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, figures / "training.png")


def write_report(out: Path, results: dict, runs: dict, cfg: QuickstartConfig, times: dict[str, float]) -> str:
    """report.md and figures/; returns the main table (ROC-AUC / AP, mean ± std over seeds)."""
    figures = out / "figures"
    write_probe_report({"runs": runs, "summary": results["models"]}, figures)  # layer curves, heat map
    tokens = json.loads((out / "tokens.json").read_text())
    _plots(out, results, tokens, cfg)
    main = {m: {t: {k: v for k, v in r.items() if k in ("roc_auc", "ap")} for t, r in tasks.items()}
            for m, tasks in results["models"].items()}
    table = results_table(main)
    checks = results["checks"]
    similarity = (out / "similarity" / "similarity.md").read_text()
    transfer = [[results["models"][m][t]["roc_auc"]["mean"] for t in TRADITIONS]
                for m in [WESTERN, *[t for t in TRADITIONS if t != WESTERN], "multi"]]
    rows = [WESTERN, *[t for t in TRADITIONS if t != WESTERN], "multi"]
    check_lines = "\n".join(f"- **{c['verdict']}**: {describe(c)}" for c in checks)
    transfer_md = _matrix_md(rows, list(TRADITIONS), transfer, "model / task")
    group_md = _groups_md(results["groups"])
    layer_plots = "\n".join(f"![{t}](figures/layers_{t}.png)" for t in TRADITIONS)
    time_lines = "\n".join(f"- {k}: {v:.0f} s" for k, v in times.items())
    text = f"""# melos quickstart: the CultureMERT experiment at toy scale

{summary(checks, results["groups"])}

Synthetic corpora: {cfg.corpus.clips} clips of {cfg.corpus.seconds:g} s per tradition ({", ".join(TRADITIONS)}) to
train on (seed {cfg.corpus.seed}), and an evaluation corpus of {cfg.eval_corpus.clips} clips per tradition
(seed {cfg.eval_corpus.seed}, split {_split(cfg.eval_corpus.split)}) that only the probes see. `western` is a {cfg.pretrain.model} encoder pre-trained from scratch on western music only; `makam`,
`raga`, `greek` are it adapted to one tradition with two-stage continual pre-training (stage 1: CNN
and codewords, 20% western replay; stage 2: all parameters), `multi` to all three; `ta-<lambda>`
merge the three single-tradition models by task arithmetic. Probes: multi-label tagging (mode,
metre, instruments) per tradition, constrained protocol ({cfg.probe.seeds} seeds, at most
{cfg.probe.epochs} epochs, learning rates {cfg.probe.learning_rates}), best layer chosen on
validation, test ROC-AUC / AP x100 as mean ± std over seeds.

## Results (Table 4.1 style)

{table}
## Claims and verdicts

A claim holds when the whole 95% paired bootstrap interval over the test clips is on its side
(a gain above 0; for western, a loss below {FORGETTING}), is contradicted when the whole interval
is on the other side, and is unclear otherwise.

{check_lines}

## By tag group (test ROC-AUC: mode / metre / instruments)

Which part of each tradition the encoders represent. A group near 0.5 is read at chance; its tags
still count in the task's macro ROC-AUC, where they add noise of the size of the differences
above (the intervals show it).

{group_md}

## Cross-tradition transfer (test ROC-AUC; rows: model, columns: task)

{transfer_md}

![transfer](figures/heatmap.png)

## Task arithmetic: lambda sweep

![lambda](figures/lambda.png)

## Task-vector similarity (cosine, single-tradition models)

{similarity}
![similarity](similarity/similarity.png) ![per group](similarity/similarity_groups.png)

## Token-level similarity of traditions (the frozen acoustic teacher, averaged over codebooks)

Jensen-Shannon divergence (bits):

{_matrix_md(tokens["corpora"], tokens["corpora"], tokens["jsd"], "JSD")}

Cosine distance:

{_matrix_md(tokens["corpora"], tokens["corpora"], tokens["cosine_distance"], "cosine distance")}

![tokens](figures/tokens.png)

## Layer-wise probes

{layer_plots}

## Training curves

![training](figures/training.png)

## Time per step

{time_lines}
"""
    write_text(out / "report.md", text)
    return table + "\n" + "\n".join(check_line(c) for c in checks) + "\n" + tally(checks)


def _split(split: dict[str, float]) -> str:
    return " / ".join(f"{name} {fraction:g}" for name, fraction in split.items())
