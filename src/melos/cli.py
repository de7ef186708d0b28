"""The `melos` command line: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

EMBED_HELP = """\
Embed audio files with a music encoder: every hidden state, mean-pooled per window.

For each input file, OUT gets <relative path>.safetensors holding `embeddings`
[n_layers, n_windows, H] (or frames [n_layers, T, H] with --pool none) and `window_starts`,
plus one row in OUT/index.jsonl (path, duration, n_windows, output, status). A bad file is
reported with its reason and the run goes on; the exit status is 1 if any file failed. A file
cut short (partial download, full disk) is such a file unless --allow-truncated is given.

examples:
  melos embed --model mert-v1-95m --input music/ --out emb/
  melos embed --model ~/ckpt/MERT-v1-330M --input files.jsonl --out emb/ --layers 0,6,12
  melos embed --model m-a-p/MERT-v1-95M --input music/ --out emb/ --skip-existing   # resume
"""

TRAIN_HELP = """\
Train an encoder as a recipe says: stages (which parameters train, optimizer, warm-up + cosine
schedule restarted per stage, steps, accumulation, replay share), teachers, loss weights.
The objective follows the model:
  MERT (mert-*, official checkpoints)  EnCodec tokens + CQT; without an EnCodec checkpoint,
                                       --set teacher.acoustic=random-projection predicts BEST-RQ
                                       tokens of log-mel instead
  efficient encoders (branchformer-*,  random-projection-quantizer tokens (rpq: 400 ms waveform
  conformer-*)                         masking) + stacked-mel reconstruction; linear in clip
                                       length with SummaryMixing (*-sm-*)

OUT gets <stage>/ (the encoder, + heads.safetensors, + teacher.safetensors for a random-projection
teacher, which adapting from it reuses) after every stage,
final/ for the last, checkpoints/last.pt and metrics.jsonl (one row per optimizer step).
Rerunning the same command after an interruption resumes from the last checkpoint.

examples:
  melos adapt --recipe recipes/culturemert-95m.yaml --from ~/models/MERT-v1-95M \\
      --data cultures.jsonl --replay music4all.jsonl --out runs/culturemert
  melos pretrain --recipe recipes/mert-tiny-pretrain.yaml --data music.jsonl --out runs/tiny
  melos pretrain --recipe recipes/branchformer-sm-164m.yaml --data music.jsonl --out runs/brn-sm \\
      --device cuda
"""

MERGE_HELP = """\
Merge adapted encoders in weight space. A task vector is tau = theta_model - theta_base; task
arithmetic writes theta_base + sum_i lambda_i tau_i (lambda = 1/N is weight averaging, a
negative lambda subtracts a task vector). TIES trims each task vector to its largest entries,
elects a sign per entry and averages the agreeing ones; DARE drops entries at random and
rescales the rest. Inputs are read one tensor at a time (memory near one model); OUT is written
in the official layout, with merge.json, and appears only after a smoke forward pass.

examples:
  melos merge task-arithmetic --base MERT-v1-95M --models runs/makam/final runs/raga/final \\
      --lambda 0.2 --out merged/ta-0.2
  melos merge ties --base MERT-v1-95M --models A B C --density 0.2 --trim model --out merged/ties
  melos merge similarity MERT-v1-95M A B C --out analysis/
  melos merge sweep --base MERT-v1-95M --models A B --task tasks/makam.yaml --out sweep/
  melos merge --recipe merge.yaml
"""


def _add_allow_truncated(p: argparse.ArgumentParser, then: str) -> None:
    """--allow-truncated, saying what the command does with the part of a truncated file that decodes."""
    p.add_argument("--allow-truncated", action="store_true",
                   help="a file that ends early (partial download, full disk: its container declares more audio "
                        "than it holds) is by default reported as truncated and left out; with this flag it is "
                        f"decoded as far as it goes and {then}, with a warning naming it. Use it when the "
                        "complete file cannot be fetched again and a shorter one is fine")


def _merge_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("merge", help="merge adapted encoders (task arithmetic, TIES, DARE) and analyse them",
                            description=MERGE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", help="a merge described in YAML (base, models, method, weights, out)")
    methods = p.add_subparsers(dest="merge_command", metavar="METHOD")

    def common(q: argparse.ArgumentParser, lambdas: bool = True) -> None:
        q.add_argument("--base", required=True, help="the pre-trained model (checkpoint directory, official layout)")
        q.add_argument("--models", nargs="+", required=True, help="adapted models (directories or weight files)")
        q.add_argument("--out", required=True, help="output checkpoint directory")
        if lambdas:
            q.add_argument("--lambda", dest="weights", type=float, nargs="+", default=[1.0],
                           help="lambda: one for all models, or one per model (default 1.0)")
        q.add_argument("--include", nargs="*", default=[], help="selectors to merge (tensor or group globs: "
                                                               "cnn, pos_conv, block.*, encoder.layers.3.*)")
        q.add_argument("--exclude", nargs="*", default=[], help="selectors kept at the base's values")
        q.add_argument("--pos-conv", choices=("stored", "combined"), default="stored",
                       help="merge the weight-normalised positional conv on stored g and v (default) or on the "
                            "combined weight")
        q.add_argument("--seed", type=int, default=0, help="seed of random methods (recorded in merge.json)")
        q.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    common(methods.add_parser("task-arithmetic", help="theta_base + sum_i lambda_i tau_i"))
    common(methods.add_parser("average", help="plain weight averaging (lambda = 1/N)"), lambdas=False)
    q = methods.add_parser("ties", help="TIES: trim, elect sign, disjoint mean")
    common(q)
    q.add_argument("--density", type=float, default=0.2, help="fraction of each task vector kept (default 0.2)")
    q.add_argument("--trim", choices=("tensor", "model"), default="tensor",
                   help="trim per tensor (mergekit, PEFT; default) or over the whole model (the TIES paper)")
    q = methods.add_parser("dare", help="DARE: random drop with rescale, then task arithmetic")
    common(q)
    q.add_argument("--drop", type=float, default=0.5, help="drop probability p (default 0.5)")

    q = methods.add_parser("similarity", help="pairwise cosine similarity of task vectors (table + heat map)")
    q.add_argument("base", help="the pre-trained model")
    q.add_argument("models", nargs="+", help="adapted models")
    q.add_argument("--out", required=True, help="folder for similarity.{json,md,png} and similarity_groups.png")
    q.add_argument("--include", nargs="*", default=[], help="selectors to compare (default: every tensor)")
    q.add_argument("--exclude", nargs="*", default=[], help="selectors left out")
    q.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    q = methods.add_parser("sweep", help="task arithmetic at several lambdas, each probed on tasks")
    q.add_argument("--base", required=True, help="the pre-trained model")
    q.add_argument("--models", nargs="+", required=True, help="adapted models")
    q.add_argument("--task", action="append", required=True, help="task YAML (repeatable)")
    q.add_argument("--out", required=True, help="folder for ta-<lambda>/, probe/, sweep.{json,md,png}")
    q.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0],
                   help="lambdas to try (default: the CultureMERT paper's 0.1 0.2 0.25 0.3 0.5 0.75 1.0)")
    q.add_argument("--seeds", type=int, default=5, help="probe seeds (default 5)")
    q.add_argument("--epochs", type=int, default=100, help="max probe epochs (default 100)")
    q.add_argument("--cache", default=None, help="feature cache root (default OUT/cache)")
    q.add_argument("--device", default="cpu", help="device for feature extraction")
    q.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _run_merge(merge_command: str | None, recipe: str | None, **kwargs) -> int:
    from .merging.executor import MergeSpec, merge

    if recipe:
        from .merging.recipe import load_merge_recipe

        base, models, spec, out = load_merge_recipe(recipe)
        record = merge(base, models, spec, out)
        print(f"{spec.method}: {record['merged_tensors']} tensors merged, {record['copied_tensors']} copied -> {out}")
        return 0
    if merge_command is None:
        raise ValueError("say what to do: melos merge {task-arithmetic,average,ties,dare,similarity,sweep} ... "
                         "or melos merge --recipe FILE (see melos merge --help)")
    progress = kwargs.pop("progress")
    if merge_command == "similarity":
        from .merging.similarity import task_vector_similarity, write_similarity

        result = task_vector_similarity(kwargs["base"], kwargs["models"], kwargs["include"], kwargs["exclude"],
                                        progress)
        written = write_similarity(result, kwargs["out"])
        print(written[1].read_text())
        print("wrote " + ", ".join(str(p) for p in written))
        return 0
    if merge_command == "sweep":
        from .evaluation.probe import ProbeConfig
        from .evaluation.tasks import load_task
        from .merging.sweep import sweep

        table = sweep(kwargs["base"], kwargs["models"], [load_task(t) for t in kwargs["task"]], kwargs["out"],
                      lambda task: ProbeConfig(task.type, max_epochs=kwargs["epochs"]), tuple(kwargs["lambdas"]),
                      kwargs["seeds"], kwargs["cache"], device=kwargs["device"], progress=progress)
        print((Path(kwargs["out"]) / "sweep.md").read_text())
        print("lambda chosen on validation: " + ", ".join(f"{t} {v:g}" for t, v in table["best"].items()))
        return 0
    base, models, out = kwargs.pop("base"), kwargs.pop("models"), kwargs.pop("out")
    record = merge(base, models, MergeSpec(method=merge_command.replace("-", "_"), **kwargs), out, progress)
    print(f"{record['method']}: {record['merged_tensors']} tensors merged, {record['copied_tensors']} copied "
          f"-> {out}")
    for model, groups in record["zero_task_vector_groups"].items():
        if groups:
            print(f"  {model}: zero task vector (frozen?) in {', '.join(groups)}")
    return 0


def _dataset_readers() -> dict:
    from functools import partial

    from .evaluation import datasets as d

    return {"magnatagatune": (d.magnatagatune, "multilabel", {"top_k": 50}),
            "gtzan": (d.gtzan, "multiclass", {}),
            "giantsteps-key": (d.giantsteps_key, "key", {}),
            "nsynth-instrument": (partial(d.nsynth, target="instrument"), "multiclass", {"window": 4.0}),
            "nsynth-pitch": (partial(d.nsynth, target="pitch"), "multiclass", {"window": 4.0})}


DATASET_NAMES = ("giantsteps-key", "gtzan", "magnatagatune", "nsynth-instrument", "nsynth-pitch")

QUICKSTART_HELP = """\
Replay the CultureMERT experiment at toy scale on this machine (12-18 minutes on 2 CPU
cores, no downloads): generate a labelled corpus of four synthetic musical traditions,
pre-train a small MERT encoder on western music only, adapt it with two-stage continual
pre-training to each other tradition and to all of them, merge the single-tradition models by
task arithmetic, probe every model on every tradition, and write OUT/report.md (tables and
plots) and OUT/results.json. Rerunning skips the steps already done.

examples:
  melos quickstart
  melos quickstart --out qs-small --set corpus.clips=60 --set pretrain.stages.0.steps=200
"""


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melos",
        description="melos: pre-train, adapt, merge, evaluate and serve music audio encoders.",
        epilog="Run `melos COMMAND --help` for the options of a command.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"melos {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("quickstart",
                            help="replay the CultureMERT experiment at toy scale (CPU, 12-18 min, no downloads)",
                            description=QUICKSTART_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="quickstart", help="output folder (default quickstart/)")
    p.add_argument("--config", default="recipes/quickstart.yaml", help="settings (default recipes/quickstart.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set corpus.clips=60 (repeatable)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")

    p = commands.add_parser("data", help="build and inspect training data manifests",
                            description="Data tools. `melos data scan FOLDER --out M.jsonl` lists every audio "
                                        "file below FOLDER with its duration (headers and the last few KB only, "
                                        "no decoding).")
    data = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    q = data.add_parser("scan", help="write a JSONL manifest (path, duration, source, culture) for a folder")
    q.add_argument("folder", help="folder to scan recursively")
    q.add_argument("--out", required=True, help="manifest to write (JSONL)")
    q.add_argument("--source", default=None, help="source name for every row (default: the folder's name)")
    q.add_argument("--culture", default=None, help="culture/tradition label for every row, e.g. turkish-makam")
    _add_allow_truncated(q, "listed with the duration present")
    q.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    for name in ("pretrain", "adapt"):
        adapt = name == "adapt"
        p = commands.add_parser(
            name, formatter_class=argparse.RawDescriptionHelpFormatter,
            help="continually pre-train an encoder (two-stage CultureMERT recipe)" if adapt
            else "pre-train an encoder from scratch (MERT, Branchformer or Conformer)",
            description=TRAIN_HELP)
        p.add_argument("--recipe", required=True, help="recipe YAML, e.g. recipes/culturemert-95m.yaml")
        if adapt:
            p.add_argument("--from", dest="init", required=True,
                           help="encoder to adapt: a checkpoint directory (MERT-v1-95M, a melos output) or preset")
        p.add_argument("--data", required=True, help="training manifest (JSONL; `melos data scan` makes one)")
        p.add_argument("--replay", default=None, help="replay manifest (e.g. Western music) for stages with replay")
        p.add_argument("--out", required=True, help="output folder; rerun the same command to resume")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe field, e.g. --set stages.0.steps=100 (repeatable)")
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
        _add_allow_truncated(p, "that part is trained on")
        p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    p = commands.add_parser(
        "features", help="extract and cache probing features of a task (every layer, per window)",
        description="Extract every hidden state, mean-pooled per window, for every split of a probing task, "
                    "into a cache keyed by the model's weights and the task's data. Interrupt and rerun to "
                    "resume; unreadable files are reported and skipped.")
    p.add_argument("--model", required=True, help="preset, checkpoint directory or cached hub id")
    p.add_argument("--task", required=True, help="task YAML file (name, type, manifest, window)")
    p.add_argument("--cache", default="cache/features", help="cache root (default cache/features)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    _add_allow_truncated(p, "that part's features are cached (later `melos probe` runs reuse them)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    p = commands.add_parser(
        "probe", help="evaluate encoders on probing tasks (MARBLE-style protocol)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Frozen encoder, cached features of every layer, an MLP probe (512 hidden, ReLU, dropout) per "
                    "(layer or learnable weighted sum) x learning rate, trained all at once; the configuration is "
                    "chosen on validation only and test scores are reported as mean and std over seeds.\n\n"
                    "example:\n  melos probe --model mert-v1-95m --model runs/makam/final --task tasks/makam.yaml "
                    "--out results/")
    p.add_argument("--model", action="append", required=True, help="encoder (repeatable)")
    p.add_argument("--task", action="append", required=True, help="task YAML (repeatable)")
    p.add_argument("--out", required=True, help="folder for results.json and results.md")
    p.add_argument("--cache", default="cache/features", help="feature cache root (default cache/features)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    p.add_argument("--epochs", type=int, default=100, help="max epochs per probe (default 100)")
    p.add_argument("--dropout", type=float, default=0.2, help="probe dropout (default 0.2)")
    p.add_argument("--device", default="cpu", help="device for feature extraction")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    p = commands.add_parser("report", help="merge probing results into one table and draw plots",
                            description="Merge results.json files of `melos probe` into table.md, layer-wise "
                                        "curves per task (layers_<task>.png) and a model x task heat map.")
    p.add_argument("results", nargs="+", help="results.json files")
    p.add_argument("--out", required=True, help="folder for table.md and the PNG plots")

    q = data.add_parser("task", help="write a probing task (YAML + JSONL) from a dataset's official metadata")
    q.add_argument("dataset", choices=DATASET_NAMES, help="which dataset layout ROOT holds")
    q.add_argument("root", help="the dataset's folder, as distributed")
    q.add_argument("--out", required=True, help="folder for <dataset>.yaml and <dataset>.jsonl")

    _merge_parser(commands)

    p = commands.add_parser("embed", help="embed audio files (a file, a folder or a JSONL manifest)",
                            description=EMBED_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True,
                   help="preset name (e.g. mert-v1-95m, random weights), local checkpoint directory in the "
                        "official Hugging Face layout, or a hub id already in the local HF cache")
    p.add_argument("--input", required=True, help="audio file, folder (searched recursively) or JSONL manifest "
                                                  "with a 'path' per line")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--layers", default="all", help="'all' or hidden-state indices, e.g. 0,5,7 (0 = encoder input)")
    p.add_argument("--window", type=float, default=30.0, help="window length in seconds (default 30)")
    p.add_argument("--hop", type=float, default=None, help="hop between windows in seconds (default: window)")
    p.add_argument("--pool", choices=("mean", "none"), default="mean",
                   help="mean over time per window (default), or none to keep every frame")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="compute precision; bfloat16 runs the encoder under autocast")
    p.add_argument("--batch-size", type=int, default=1,
                   help="windows per encoder call (default 1: fastest on CPU; raise it on a GPU)")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep files an earlier run finished (resume an interrupted run); retry failed ones")
    _add_allow_truncated(p, "that part is embedded")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def run(command: str, **kwargs) -> int:
    """Run one subcommand with parsed arguments; returns the exit status."""
    if command == "embed":
        from .embedding import embed

        summary = embed(kwargs.pop("model"), kwargs.pop("input"), kwargs.pop("out"), **kwargs)
        speed = summary.audio_seconds / max(summary.wall_seconds, 1e-9)
        print(f"embedded {summary.n_done} files ({summary.audio_seconds / 3600:.2f} h of audio, {speed:.1f}x "
              f"real time), skipped {summary.n_skipped} done earlier, {len(summary.failed)} failed "
              f"-> {summary.out_dir}")
        for path, reason in summary.failed.items():
            print(f"  failed: {reason}" if path in reason else f"  failed: {path}: {reason}", file=sys.stderr)
        return 0 if summary.ok else 1
    if command in ("pretrain", "adapt"):
        import logging

        from .training.recipe import load_recipe
        from .training.run import train

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        recipe = load_recipe(kwargs.pop("recipe"), kwargs.pop("overrides"))
        final = train(recipe, **kwargs)
        print(f"done: final encoder (official layout) and heads in {final}; per-step metrics in "
              f"{final.parent / 'metrics.jsonl'}")
        return 0
    if command == "data":
        from .data.manifest import scan_folder, write_manifest

        if kwargs.pop("data_command") == "task":
            from .evaluation.datasets import write_task

            reader, task_type, options = _dataset_readers()[kwargs["dataset"]]
            rows = reader(Path(kwargs["root"]).expanduser())
            path = write_task(rows, Path(kwargs["out"]), kwargs["dataset"], task_type, **options)
            print(f"{len(rows)} items -> {path}")
            return 0
        out = kwargs.pop("out")
        result = scan_folder(**kwargs)
        write_manifest(result.rows, out)
        print(f"{len(result.rows)} files, {result.hours:.2f} h -> {out}; {len(result.failed)} unreadable")
        for path, reason in result.failed.items():
            print(f"  skipped {path}: {reason}", file=sys.stderr)
        return 0
    if command == "probe":
        from .evaluation.probe import ProbeConfig
        from .evaluation.protocol import run_probes
        from .evaluation.tasks import load_task

        tasks = [load_task(t) for t in kwargs["task"]]
        results = run_probes(kwargs["model"], tasks, kwargs["out"], kwargs["cache"],
                             lambda task: ProbeConfig(task.type, dropout=kwargs["dropout"],
                                                      max_epochs=kwargs["epochs"]),
                             kwargs["seeds"], kwargs["device"], kwargs["progress"])
        print((Path(kwargs["out"]) / "results.md").read_text())
        for model, runs in results["runs"].items():
            for task, run in runs.items():
                print(f"{model} / {task}: chosen layer {run['chosen']['layer']}, lr {run['chosen']['lr']:g} "
                      f"(validation {run['primary']} {run['chosen']['valid']:.3f})")
        return 0
    if command == "report":
        from .evaluation.report import merge_results, write_report

        written = write_report(merge_results(kwargs["results"]), kwargs["out"])
        print((Path(kwargs["out"]) / "table.md").read_text())
        print("wrote " + ", ".join(str(p) for p in written))
        return 0
    if command == "features":
        from .evaluation.features import extract_features
        from .evaluation.tasks import load_task

        task = load_task(kwargs["task"])
        folder, summary = extract_features(kwargs["model"], task, kwargs["cache"], device=kwargs["device"],
                                           allow_truncated=kwargs["allow_truncated"],
                                           progress=kwargs["progress"])
        print(f"{task.name}: features of {summary.n_done + summary.n_skipped} files in {folder} "
              f"({summary.n_skipped} cached earlier), {len(summary.failed)} skipped as unreadable")
        for path, reason in summary.failed.items():
            print(f"  skipped: {reason}", file=sys.stderr)
        return 0
    if command == "merge":
        return _run_merge(**kwargs)
    if command == "quickstart":
        from .quickstart import quickstart

        quickstart(**kwargs)
        return 0
    raise ValueError(f"unknown command {command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(get_parser().parse_args(argv))
    try:
        return run(**args)
    except (FileNotFoundError, ValueError) as err:  # user errors: one clear line, no traceback
        print(f"melos: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
