"""`melos probe`: evaluate encoders on probing tasks with the MARBLE-style protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "probe", help="evaluate encoders on probing tasks (MARBLE-style protocol)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Frozen encoder, cached features of every layer, an MLP probe (512 hidden, ReLU, dropout) per "
                    "(layer or learnable weighted sum) x learning rate, trained all at once; the configuration is "
                    "chosen on validation only and test scores are reported as mean and std over seeds.\n\n"
                    "example:\n  melos probe --model mert-v1-95m --model runs/makam/final --task tasks/makam.yaml "
                    "--out results/")
    p.add_argument("--model", action="append", required=True, help="encoder (repeatable)")
    p.add_argument("--task", action="append", default=[], help="task YAML (repeatable)")
    p.add_argument("--suite", choices=["culturemert", "efficient"], default=None,
                   help="every task of a paper's suite whose dataset is under --data-root (culturemert: makam, "
                        "saraga1.5_hindustani, saraga1.5_carnatic, lyra, fma, magnatagatune; efficient: "
                        "magnatagatune, mtg-jamendo-dataset, giantsteps, gtzan, emomusic, nsynth, vocalset); writes "
                        "OUT/suite.md beside the published numbers (MERT-v1-95M; for efficient also the paper's "
                        "MERT-330); missing datasets are skipped and listed")
    p.add_argument("--data-root", default=None, help="folder holding the suite's datasets, one folder each")
    p.add_argument("--out", required=True, help="folder for results.json and results.md")
    p.add_argument("--cache", default="cache/features", help="feature cache root (default cache/features)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    p.add_argument("--epochs", type=int, default=100, help="max epochs per probe (default 100)")
    p.add_argument("--dropout", type=float, default=None,
                   help="probe dropout (default 0.2; 0.25 with --suite efficient, as that paper)")
    p.add_argument("--device", default="cpu", help="device for feature extraction")
    add_progress(p)


def run(model: list[str], task: list[str], suite: str | None, data_root: str | None, out: str, cache: str,
        seeds: int, epochs: int, dropout: float | None, device: str, progress: bool) -> int:
    from ..evaluation.probe import ProbeConfig
    from ..evaluation.protocol import run_probes
    from ..evaluation.suites import prepare_suite, suite_table
    from ..evaluation.tasks import load_task
    from ..utils.atomic import write_text

    if bool(task) == bool(suite):
        raise ValueError("give either --task (repeatable) or --suite with --data-root")
    if suite and not data_root:
        raise ValueError("--suite needs --data-root, the folder holding the suite's datasets")
    dropout = dropout if dropout is not None else 0.25 if suite == "efficient" else 0.2
    missing: list[str] = []
    if suite:
        tasks, missing = prepare_suite(suite, data_root, out)
        for line in missing:
            print(f"skipped {line}")
        if not tasks:
            raise FileNotFoundError(f"{data_root}: none of the {suite} suite's datasets is there")
    else:
        tasks = [load_task(t) for t in task]
    results = run_probes(model, tasks, out, cache,
                         lambda t: ProbeConfig(t.type, dropout=dropout, max_epochs=epochs), seeds, device, progress,
                         suite=suite)
    print((Path(out) / "results.md").read_text())
    if suite:
        table = suite_table(suite, results["summary"])
        skipped = "".join(f"\n- skipped {line}" for line in missing)
        write_text(Path(out) / "suite.md", f"# {suite} suite\n\n{table}\n{skipped}\n")
        print(table)
    for name, runs in results["runs"].items():
        for task_name, result in runs.items():
            print(f"{name} / {task_name}: chosen layer {result['chosen']['layer']}, lr {result['chosen']['lr']:g} "
                  f"(validation {result['primary']} {result['chosen']['valid']:.3f})")
    return 0
