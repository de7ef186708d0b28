"""A tiny Branchformer-SummaryMixing encoder against the quickstart's tiny MERT, trained for the
same time on the same western music, probed on the same four tradition tasks.

    python benchmarks/efficient_vs_mert.py --quickstart quickstart

Needs a finished `melos quickstart` in that folder (corpus, data, runs/western). The MERT side is
the quickstart's western model as it is (its steps are read from its metrics). The efficient side trains `branchformer-sm-tiny`
with the random-projection-quantizer objective, the quickstart's pre-training optimiser settings
(batch, crop, learning rates) and as many steps as fit in that time. Both throughputs are
measured here, one after the other, by short calibration runs, so the time budget does not
depend on how busy the machine was during the quickstart. Both are probed with the quickstart's protocol (cached
features, same seeds, epochs and learning rates). Prints one table: parameters, training
audio-seconds per second, steps, mean test ROC-AUC and AP per task.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from melos.data.synth import TRADITIONS
from melos.evaluation.probe import ProbeConfig
from melos.evaluation.protocol import run_probes
from melos.evaluation.tasks import load_task
from melos.models import load_encoder
from melos.quickstart.pipeline import load_config
from melos.training.recipe import Recipe
from melos.training.run import train

CALIBRATION_STEPS = 10


def throughput(run: Path) -> tuple[float, int]:
    """(mean training audio-seconds per second, optimizer steps) of a finished run."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return sum(r["throughput/audio_s_per_s"] for r in rows) / len(rows), len(rows)


def calibrate(recipe: Recipe, qs: Path, folder: Path) -> float:
    """Audio-seconds per second of `recipe`'s first stage over CALIBRATION_STEPS fresh steps."""
    shutil.rmtree(folder, ignore_errors=True)
    stage = dataclasses.replace(recipe.stages[0], steps=CALIBRATION_STEPS)
    train(dataclasses.replace(recipe, stages=[stage]), qs / "data" / "train-western.jsonl", folder, progress=False)
    return throughput(folder)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quickstart", default="quickstart", help="a finished `melos quickstart` folder")
    parser.add_argument("--config", default="recipes/quickstart.yaml")
    parser.add_argument("--model", default="branchformer-sm-tiny")
    args = parser.parse_args()
    qs = Path(args.quickstart)
    cfg = load_config(args.config)
    stage = cfg.pretrain.stages[0]
    audio_per_step = stage.batch_size * cfg.pretrain.crop_seconds
    mert_dir = qs / "runs" / "western"
    mert_steps = throughput(mert_dir)[1]
    teacher = dataclasses.replace(cfg.pretrain.teacher, statistics=str(qs / "data" / "train-all.jsonl"))
    efficient = dataclasses.replace(cfg.pretrain, model=args.model, teacher=teacher)  # fitted as the quickstart's
    out = qs / "efficient"
    speed = {name: calibrate(recipe, qs, out / f"calibration-{name}")
             for name, recipe in (("mert", cfg.pretrain), ("efficient", efficient))}
    budget = mert_steps * audio_per_step / speed["mert"]
    steps = max(1, round(budget * speed["efficient"] / audio_per_step))
    print(f"MERT's {mert_steps} steps take {budget:.0f} s at {speed['mert']:.1f} audio-s/s; {args.model} at "
          f"{speed['efficient']:.1f} audio-s/s gets {steps} steps in that time")
    run = out / args.model
    if not (run / "final" / "model.safetensors").is_file():
        train(dataclasses.replace(efficient, stages=[dataclasses.replace(stage, steps=steps)]),
              qs / "data" / "train-western.jsonl", run, progress=True)

    models = {"mert-tiny": mert_dir / "final", args.model: run / "final"}
    tasks = [load_task(qs / "data" / f"{t}.yaml") for t in TRADITIONS]
    probe = cfg.probe
    results = run_probes([str(p) for p in models.values()], tasks, out / "probe", qs / "cache",
                         lambda task: ProbeConfig(task.type, dropout=probe.dropout, max_epochs=probe.epochs),
                         probe.seeds, lrs=tuple(probe.learning_rates))
    print("\n| model | parameters | train audio-s/s | steps | " + " | ".join(f"{t} ROC-AUC / AP" for t in TRADITIONS) + " |")
    print("|---" * (4 + len(TRADITIONS)) + "|")
    for (name, path), speed_, steps_ in zip(models.items(), speed.values(), (mert_steps, steps)):
        params = sum(p.numel() for p in load_encoder(path).parameters())
        scores = results["summary"][str(path)]
        cells = [f"{scores[t]['roc_auc']['mean']:.3f} / {scores[t]['ap']['mean']:.3f}" for t in TRADITIONS]
        print(f"| {name} | {params / 1e3:.0f}k | {speed_:.1f} | {steps_} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
