"""`melos quickstart`: the CultureMERT experiment end to end at toy scale, on a laptop CPU.

    1 corpus     synthetic music of four traditions (western, makam, raga, greek), labelled: one
                 corpus to train on, and an evaluation corpus (another seed) for the probes
    2 pretrain   a small MERT encoder from scratch on western only (the "MERT-v1" of this world)
    3 adapt      two-stage continual pre-training to each other tradition, and to all of them
                 (stage 1: CNN + codewords with 20% western replay; stage 2: everything)
    4 merge      task arithmetic of the single-tradition models at several lambdas; task-vector
                 similarity
    5 tokens     how differently a frozen teacher tokenises each tradition (JSD, cosine)
    6 probe      every model on every tradition's tagging task (mode + metre + instruments),
                 from the evaluation corpus
    7 report     report.md, results.json (with each claim's verdict) and the plots

Every step leaves its outputs under OUT and is skipped when they are already there, so a rerun
resumes (training itself resumes from its last checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from pathlib import Path
from typing import Callable

from ..config import load_typed
from ..data.manifest import read_manifest
from ..data.synth import TRADITIONS, write_corpus
from ..evaluation.probe import ProbeConfig
from ..evaluation.protocol import run_probes
from ..evaluation.features import task_hash
from ..evaluation.tasks import Task, load_task
from ..merging import MergeSpec, merge
from ..merging.similarity import task_vector_similarity, write_similarity
from ..training.recipe import Recipe
from ..training.run import acoustic_teacher, train
from ..utils.atomic import write_text
from .config import WESTERN, QuickstartConfig
from .claims import checks, paired_intervals
from .report import group_auc, tag_groups, token_similarity, write_report


def load_config(path: str | Path, overrides: list[str] = ()) -> QuickstartConfig:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: quickstart settings not found; run from the melos repository root "
                                "(where recipes/ is) or pass --config PATH")
    return load_typed(path, QuickstartConfig, overrides)


class StepFailed(RuntimeError):
    """A quickstart step raised: names the step; the cause is chained (and its traceback printed)."""

    def __init__(self, step: str, cause: BaseException):
        super().__init__(f"quickstart step '{step}' failed: {type(cause).__name__}: {cause} (rerun the same "
                         "command to resume from this step)")
        self.step = step


class Steps:
    """Runs named steps once, times them, and remembers what was skipped."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def run(self, name: str, done: bool, fn: Callable[[], object]) -> None:
        if done:
            print(f"[{name}] already done, skipped")
            self.times[name] = 0.0
            return
        print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        try:
            fn()
        except Exception as err:
            traceback.print_exc()
            raise StepFailed(name, err) from err
        self.times[name] = time.perf_counter() - start
        print(f"[{name}] done in {self.times[name]:.0f} s", flush=True)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _read_corpus(manifest: Path) -> list[dict]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = str((manifest.parent / row["path"]).resolve())
    return rows


def prepare_data(corpus_manifest: Path, eval_manifest: Path, out: Path) -> dict[str, Path]:
    """Training manifests (every clip of the training corpus) per tradition and for all
    non-western ones, and one multi-label tagging task per tradition from the evaluation corpus
    (labels: mode + metre + instruments; its train/valid/test splits)."""
    rows, probe_rows = _read_corpus(corpus_manifest), _read_corpus(eval_manifest)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    paths = {}
    for tradition in TRADITIONS:
        _write_jsonl(data / f"train-{tradition}.jsonl", [r for r in rows if r["culture"] == tradition])
        _write_jsonl(data / f"task-{tradition}.jsonl", [{"path": r["path"], "split": r["split"], "labels": r["labels"]}
                                                        for r in probe_rows if r["culture"] == tradition])
        write_text(data / f"{tradition}.yaml",
                   f"name: {tradition}\ntype: multilabel\nmanifest: task-{tradition}.jsonl\nwindow: 5\ntop_k: 64\n")
        paths[tradition] = data / f"train-{tradition}.jsonl"
    _write_jsonl(data / "train-multi.jsonl", [r for r in rows if r["culture"] != WESTERN])
    paths["multi"] = data / "train-multi.jsonl"
    _write_jsonl(data / "train-all.jsonl", rows)
    paths["all"] = data / "train-all.jsonl"
    return paths


def multi_recipe(cfg: QuickstartConfig) -> Recipe:
    """The adapt recipe with the multi-tradition model's stage lengths (`multi_steps`)."""
    if not cfg.multi_steps:
        return cfg.adapt
    if len(cfg.multi_steps) != len(cfg.adapt.stages):
        raise ValueError(f"multi_steps has {len(cfg.multi_steps)} entries for {len(cfg.adapt.stages)} adapt stages")
    stages = [dataclasses.replace(stage, steps=steps) for stage, steps in zip(cfg.adapt.stages, cfg.multi_steps)]
    return dataclasses.replace(cfg.adapt, stages=stages)


def probed_tasks(tasks: list[Task]) -> dict[str, str]:
    """What the probe step probed: each task's name and the hash of its data."""
    return {task.name: task_hash(task) for task in tasks}


def probes_done(probe: Path, models: list[Path], tasks: list[Task]) -> bool:
    """Whether the probe step's results.json has every model x task with saved test outputs, on
    the tasks as they are now: a folder moved since, probed by a melos that saved none, or probed
    on other task data (an older quickstart probed its training corpus) is probed again."""
    results, probed = probe / "results.json", probe / "tasks.json"
    if not (results.is_file() and probed.is_file()) or json.loads(probed.read_text()) != probed_tasks(tasks):
        return False
    runs = json.loads(results.read_text())["runs"]
    return all("test_outputs" in runs.get(str(m), {}).get(t.name, {}) for m in models for t in tasks)


def quickstart(config: str | Path = "recipes/quickstart.yaml", out: str | Path = "quickstart",
               overrides: list[str] = (), progress: bool = True) -> dict:
    """Run every step (skipping finished ones); returns results.json's content."""
    cfg = load_config(config, list(overrides))
    multi = multi_recipe(cfg)  # a bad multi_steps fails here, not after three adaptations
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps()
    others = [t for t in TRADITIONS if t != WESTERN]
    runs = out / "runs"
    final = {name: runs / name / "final" for name in [WESTERN, *others, "multi"]}
    corpus, eval_corpus = out / "corpus", out / "eval-corpus"

    def corpora() -> None:
        write_corpus(corpus, cfg.corpus.clips, cfg.corpus.seconds, cfg.corpus.seed, {"train": 1.0}, progress=progress)
        write_corpus(eval_corpus, cfg.eval_corpus.clips, cfg.corpus.seconds, cfg.eval_corpus.seed,
                     cfg.eval_corpus.split, progress=progress)

    steps.run("1 corpus", (corpus / "manifest.jsonl").is_file() and (eval_corpus / "manifest.jsonl").is_file(),
              corpora)
    data = prepare_data(corpus / "manifest.jsonl", eval_corpus / "manifest.jsonl", out)

    # The teacher stands for a general-purpose codec (EnCodec is not trained on MERT's data): its
    # statistics come from every tradition, so none of them is tokenised mostly into a few codes.
    pretrain = dataclasses.replace(cfg.pretrain, teacher=dataclasses.replace(cfg.pretrain.teacher,
                                                                             statistics=str(data["all"])))
    steps.run("2 pretrain western", (final[WESTERN] / "config.json").is_file(), lambda: train(
        pretrain, data[WESTERN], runs / WESTERN, progress=progress))

    def adapt() -> None:
        for name in [*others, "multi"]:
            if not (final[name] / "config.json").is_file():
                print(f"  adapting to {name}")
                recipe = multi if name == "multi" else cfg.adapt
                train(recipe, data[name], runs / name, init=str(final[WESTERN]), replay=data[WESTERN],
                      progress=progress)

    steps.run("3 adapt", all((final[n] / "config.json").is_file() for n in [*others, "multi"]), adapt)

    merged = {f"ta-{lam:g}": out / "merged" / f"ta-{lam:g}" for lam in cfg.lambdas}

    def merge_all() -> None:
        for lam, (name, folder) in zip(cfg.lambdas, merged.items()):
            if not (folder / "merge.json").is_file():
                merge(final[WESTERN], [final[t] for t in others], MergeSpec(weights=[lam]), folder, progress=False)
        write_similarity(task_vector_similarity(final[WESTERN], [final[t] for t in others], progress=False),
                         out / "similarity")

    steps.run("4 merge", (out / "similarity" / "similarity.json").is_file()
              and all((f / "merge.json").is_file() for f in merged.values()), merge_all)

    def tokens() -> None:
        teacher = acoustic_teacher(cfg.pretrain.teacher, cfg.pretrain.seed, final[WESTERN], read_manifest(data[WESTERN]))
        write_text(out / "tokens.json", json.dumps(token_similarity(out / "data", teacher), indent=2))

    steps.run("5 tokens", (out / "tokens.json").is_file(), tokens)

    models = {WESTERN: final[WESTERN], **{t: final[t] for t in others}, "multi": final["multi"], **merged}
    tasks = [load_task(out / "data" / f"{t}.yaml") for t in TRADITIONS]
    probe = cfg.probe

    def probe_all() -> None:
        run_probes([str(p) for p in models.values()], tasks, out / "probe", out / "cache",
                   lambda task: ProbeConfig(task.type, dropout=probe.dropout, max_epochs=probe.epochs),
                   probe.seeds, progress=progress, lrs=tuple(probe.learning_rates))
        write_text(out / "probe" / "tasks.json", json.dumps(probed_tasks(tasks), indent=2))

    steps.run("6 probe", probes_done(out / "probe", list(models.values()), tasks), probe_all)

    probed = json.loads((out / "probe" / "results.json").read_text())
    by_name = {name: str(path) for name, path in models.items()}
    runs_by_name = {name: probed["runs"][path] for name, path in by_name.items()}
    results = {"models": {name: {task: run["test"] for task, run in tasks_.items()}
                          for name, tasks_ in runs_by_name.items()},
               "intervals": paired_intervals(out / "probe", runs_by_name),
               "groups": group_auc(out / "probe", runs_by_name, {t.name: t.vocabulary for t in tasks},
                                   tag_groups(eval_corpus / "manifest.jsonl"))}
    results["checks"] = checks(results["intervals"])
    write_text(out / "results.json", json.dumps(results, indent=2))
    start = time.perf_counter()
    table = write_report(out, results, runs_by_name, cfg, steps.times)
    steps.times["7 report"] = time.perf_counter() - start
    print(table)
    print("time per step: " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.times.items()))
    print(f"report: {out / 'report.md'}; numbers: {out / 'results.json'}")
    return results
