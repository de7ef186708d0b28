"""`melos merge`: merge adapted encoders in weight space (task arithmetic, TIES, DARE), compare their
task vectors, sweep lambda."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_progress

HELP = """\
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


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("merge", help="merge adapted encoders (task arithmetic, TIES, DARE) and analyse them",
                            description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        add_progress(q)

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
    add_progress(q)

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
    add_progress(q)


def run(merge_command: str | None, recipe: str | None, **kwargs) -> int:
    from ..merging.executor import MergeSpec, merge

    if recipe:
        from ..merging.recipe import load_merge_recipe

        base, models, spec, out = load_merge_recipe(recipe)
        record = merge(base, models, spec, out)
        print(f"{spec.method}: {record['merged_tensors']} tensors merged, {record['copied_tensors']} copied -> {out}")
        return 0
    if merge_command is None:
        raise ValueError("say what to do: melos merge {task-arithmetic,average,ties,dare,similarity,sweep} ... "
                         "or melos merge --recipe FILE (see melos merge --help)")
    progress = kwargs.pop("progress")
    if merge_command == "similarity":
        from ..merging.similarity import task_vector_similarity, write_similarity

        result = task_vector_similarity(kwargs["base"], kwargs["models"], kwargs["include"], kwargs["exclude"],
                                        progress)
        written = write_similarity(result, kwargs["out"])
        print(written[1].read_text())
        print("wrote " + ", ".join(str(p) for p in written))
        return 0
    if merge_command == "sweep":
        from ..evaluation.probe import ProbeConfig
        from ..evaluation.tasks import load_task
        from ..merging.sweep import sweep

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
