"""The probing protocol: grid over (layer choice, lr) per seed, choice on validation only,
test mean and std over seeds; results as JSON and a Markdown table (models x tasks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file

from ..utils.atomic import atomic_file, write_text
from ..utils.markdown import markdown_table
from . import metrics as M
from .features import load_split
from .probe import LEARNING_RATES, WEIGHTED, GridTrainer, Member, ProbeConfig
from .saved_probe import SavedProbe
from .tasks import Task

PRIMARY = {"multilabel": "roc_auc", "multiclass": "accuracy", "regression": "r2", "key": "weighted_score"}


def task_metrics(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every reported metric, per member: outputs [M, T, C] (track-level), targets as task.encode."""
    if task.type == "multilabel":
        auc, _ = M.roc_auc_macro(outputs, targets)
        ap, _ = M.average_precision_macro(outputs, targets)
        micro, macro = M.f1_at_threshold(outputs, targets)
        return {"roc_auc": auc, "ap": ap, "micro_f1": micro, "macro_f1": macro}
    if task.type == "multiclass":
        return {"accuracy": M.accuracy(outputs, targets), "macro_accuracy": M.macro_accuracy(outputs, targets)}
    if task.type == "key":
        pred = outputs.argmax(-1)
        return {"weighted_score": M.key_weighted_score(pred, targets), "accuracy": M.key_accuracy(pred, targets)}
    r2 = M.r2(outputs, targets)  # (M, D)
    names = task.targets or [str(d) for d in range(r2.shape[1])]
    return {"r2": r2.mean(1), **{f"r2/{n}": r2[:, d] for d, n in enumerate(names)}}


def n_outputs(task: Task, train_targets: torch.Tensor) -> int:
    if task.type == "key":
        return len(M.KEY_LABELS)
    if task.type == "regression":
        return train_targets.shape[1]
    return len(task.vocabulary or [])


def output_labels(task: Task, n_out: int) -> list[str]:
    """Names of the probe's outputs, in order."""
    if task.type == "key":
        return list(M.KEY_LABELS)
    if task.type == "regression":
        return task.targets or [str(d) for d in range(n_out)]
    return list(task.vocabulary or [])


def probe_task(folder: str | Path, task: Task, config: ProbeConfig, seeds: int = 5,
               lrs: tuple[float, ...] = LEARNING_RATES, outputs_to: Path | None = None,
               probe_to: Path | None = None, model_hash: str = "") -> dict:
    """Run the grid for `seeds` seeds on a filled feature cache; returns a JSON-ready dict.

    Features are standardised per layer and dimension with the training split's mean and std
    (as HEAR's evaluation kit does), so a layer's scale does not decide how well it probes.
    `outputs_to`: a safetensors file for the chosen member's track-level test outputs per seed
    ("outputs" [S, T, C]) and the test targets, what paired comparisons of models resample.
    `probe_to`: a `SavedProbe` file for the chosen member's best state of the first seed (whose
    test outputs are outputs[0]) and the standardisation, tagged with `model_hash`."""
    train, valid, test = (load_split(folder, task, s) for s in ("train", "valid", "test"))
    std, mean = torch.std_mean(train.features, dim=1, keepdim=True)  # [n_layers, 1, H]
    for split in (train, valid, test):
        split.features = (split.features - mean) / (std + 1e-6)
    # Regression probes learn standardised targets (as MARBLE does), so a target's offset and
    # scale (Emomusic's 1-9) do not decide which learning rate fits; r² is unchanged by it.
    scale, shift = torch.ones(1), torch.zeros(1)
    if task.type == "regression":
        scale, shift = torch.std_mean(train.targets, dim=0)
        scale = scale.clamp_min(1e-6)
    targets = {name: (split.targets - shift) / scale if task.type == "regression" else split.targets
               for name, split in (("train", train), ("valid", valid), ("test", test))}
    n_layers = train.features.shape[0]
    members = [Member(layer, lr) for layer in [*range(n_layers), WEIGHTED] for lr in lrs]
    primary = PRIMARY[task.type]

    def metric(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return task_metrics(task, outputs, targets)[primary]

    valid_scores, test_scores, test_outputs, first_states = [], [], [], []
    for seed in range(seeds):
        result = GridTrainer(config, members, n_outputs(task, train.targets), seed, metric).fit(
            (train.features, targets["train"][train.groups]), (valid.features, targets["valid"]),
            (test.features, targets["test"]), valid.groups, test.groups)
        outputs = result.test_outputs * scale + shift if task.type == "regression" else result.test_outputs
        valid_scores.append(result.best_valid)
        test_scores.append(task_metrics(task, outputs, test.targets))
        test_outputs.append(outputs)
        first_states = first_states or result.best_states  # one seed's states: the grid's are large
    valid_mean = torch.stack(valid_scores).mean(0)  # (M,)
    chosen = int(valid_mean.argmax())  # validation only: test never influences the choice
    if outputs_to is not None:
        with atomic_file(outputs_to) as tmp:
            save_file({"outputs": torch.stack([o[chosen] for o in test_outputs]).float().contiguous(),
                       "targets": test.targets.contiguous()}, tmp)
    if probe_to is not None:
        n_out = n_outputs(task, train.targets)
        state = dict(first_states[chosen])
        if task.type == "regression":  # fold the target standardisation into the output layer
            state["w2"], state["b2"] = state["w2"] * scale, state["b2"] * scale + shift
        SavedProbe(task.name, task.type, output_labels(task, n_out), members[chosen].layer, task.window,
                   task.hop or task.window, model_hash, state, mean, std).save(probe_to)
    grid = [{"layer": "weighted" if m.layer == WEIGHTED else m.layer, "lr": m.lr,
             "valid": float(valid_mean[i]),
             "test": {k: float(torch.stack([s[k][i] for s in test_scores]).mean()) for k in test_scores[0]}}
            for i, m in enumerate(members)]
    summary = {k: {"mean": float(v.mean()), "std": float(v.std(correction=0))}
               for k in test_scores[0] for v in [torch.stack([s[k][chosen] for s in test_scores])]}
    return {"task": task.name, "type": task.type, "primary": primary, "seeds": seeds,
            "aggregation": "mean of window probabilities (predictions for regression) per track",
            "chosen": grid[chosen], "grid": grid, "test": summary,
            "n_tracks": {"train": len(train.tracks), "valid": len(valid.tracks), "test": len(test.tracks)},
            "dropped_labels": task.dropped_labels}


def results_table(summary: dict[str, dict[str, dict]]) -> str:
    """Models as rows, task/metric as columns, `mean ± std` in percent (r² and scores x100)."""
    columns = sorted({(task, metric) for tasks in summary.values() for task, res in tasks.items()
                      for metric in res if "/" not in metric})
    rows = []
    for model, tasks in summary.items():
        values = [tasks.get(task, {}).get(metric) for task, metric in columns]
        rows.append([model, *(f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}" if v else "" for v in values)])
    return markdown_table(["model", *(f"{t} {m}" for t, m in columns)], rows) + "\n"


def run_probes(models: list[str], tasks: list[Task], out: str | Path, cache: str | Path, config_for:
               Callable[[Task], ProbeConfig], seeds: int, device: str = "cpu", progress: bool = True,
               lrs: tuple[float, ...] = LEARNING_RATES, suite: str | None = None) -> dict:
    """Features (cached) + probes for every model x task; writes results.json, results.md and
    each run's test outputs (test_outputs/INDEX-TASK.safetensors) and trained probe
    (probes/INDEX-TASK.safetensors, see `saved_probe`), both named in its run. `suite` (a
    `suites.SUITES` name) is recorded so that `melos report` can table it again."""
    from .features import extract_features

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"runs": {}, "summary": {}, "suites": [suite] if suite else []}
    for index, model in enumerate(models):
        for task in tasks:
            folder, _ = extract_features(model, task, cache, device=device, progress=progress)
            outputs = Path("test_outputs") / f"{index}-{task.name}.safetensors"
            weights = Path("probes") / f"{index}-{task.name}.safetensors"
            hash_ = json.loads((folder / "cache.json").read_text())["model_hash"]
            run = probe_task(folder, task, config_for(task), seeds, lrs, outputs_to=out / outputs,
                             probe_to=out / weights, model_hash=hash_)
            run["test_outputs"] = str(outputs)
            run["probe_weights"] = str(weights)
            results["runs"].setdefault(model, {})[task.name] = run
            results["summary"].setdefault(model, {})[task.name] = run["test"]
    write_text(out / "results.json", json.dumps(results, indent=2))
    write_text(out / "results.md", results_table(results["summary"]))
    return results
