"""The quickstart, scaled down: the same end-to-end run, its outputs and its resume."""

import json
from pathlib import Path

import pytest

from melos.cli import main
from melos.quickstart.claims import Claim, checks, claims, summary, tally, verdict
from melos.quickstart.report import group_auc, moving_average

# Fewer and shorter clips, fewer steps and probe epochs than recipes/quickstart.yaml.
FAST = ["corpus.clips=24", "eval_corpus.clips=24", "corpus.seconds=2.0", "pretrain.stages.0.steps=20", "adapt.stages.0.steps=4",
        "adapt.stages.1.steps=8", "multi_steps=[6,12]", "probe.seeds=1", "probe.epochs=5", "lambdas=[0.2,1.0]"]


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs") / "quickstart"
    args = ["quickstart", "--out", str(out), "--no-progress"] + [a for o in FAST for a in ("--set", o)]
    assert main(args) == 0
    return out, args


def test_quickstart_results_cover_every_model_and_task(quickstart_run):
    out, _ = quickstart_run
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"western", "makam", "raga", "greek", "multi", "ta-0.2", "ta-1"}
    for tasks in results["models"].values():
        assert set(tasks) == {"western", "makam", "raga", "greek"}
        for metrics in tasks.values():
            assert {"roc_auc", "ap"} <= set(metrics)
            assert 0 <= metrics["roc_auc"]["mean"] <= 1 and metrics["roc_auc"]["std"] >= 0
    assert len(results["intervals"]) == 7  # each check's difference, bootstrapped over test clips
    for interval in results["intervals"].values():  # ~10 test clips here: some may be undefined (nan)
        assert set(interval) == {"difference", "low", "high", "p_better"}
    assert [c["claim"] for c in results["checks"]] == [c.sentence for c in claims()]
    for check, claim in zip(results["checks"], claims()):
        assert set(check) == {"claim", "model", "baseline", "task", "difference", "low", "high", "verdict"}
        assert (check["model"], check["task"]) == (claim.model, claim.task)
        assert check["difference"] == results["intervals"][claim.key]["difference"]
        assert check["verdict"] == verdict(check["low"], check["high"], claim.threshold)
    assert results["groups"].keys() == results["models"].keys()
    for tasks in results["groups"].values():  # 3 or 4 test clips: a group may have no scorable tag
        assert set(tasks) == {"western", "makam", "raga", "greek"}
        assert all(g in ("mode", "metre", "instruments") and 0 <= v <= 1 for t in tasks.values() for g, v in t.items())
    assert "## By tag group" in (out / "report.md").read_text()


def test_group_auc_averages_each_groups_tags_over_seeds(tmp_path):
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    targets = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    outputs = torch.tensor(rng.random((3, 6, 4)), dtype=torch.float32)  # 3 seeds, 6 tracks, 4 tags
    save_file({"outputs": outputs, "targets": targets}, tmp_path / "0-makam.safetensors")
    runs = {"western": {"makam": {"test_outputs": "0-makam.safetensors"}}}
    groups = {"makam/rast": "mode", "oud": "instruments", "ney": "instruments", "kanun": "instruments"}
    table = group_auc(tmp_path, runs, {"makam": ["makam/rast", "oud", "ney", "kanun"]}, groups)
    auc = [[roc_auc_score(targets[:, j], outputs[s, :, j]) for j in range(3)] for s in range(3)]
    expected = {"mode": np.mean([a[0] for a in auc]), "instruments": np.mean([a[1:] for a in auc])}  # kanun: no positives
    assert table["western"]["makam"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("low, high, threshold, expected", [
    (0.01, 0.05, 0.0, "holds"),           # the whole interval above 0
    (-0.01, 0.05, 0.0, "unclear"),        # straddles
    (-0.05, -0.01, 0.0, "contradicted"),  # the whole interval below 0
    (0.0, 0.05, 0.0, "unclear"),          # touching the threshold is not "above"
    (-0.05, 0.0, 0.0, "unclear"),         # nor "below"
    (-0.019, 0.01, -0.02, "holds"),       # western: a loss below 0.02 (difference above -0.02)
    (-0.03, 0.01, -0.02, "unclear"),
    (-0.05, -0.021, -0.02, "contradicted"),
    (float("nan"), float("nan"), 0.0, "unclear"),  # too few test clips for an interval
])
def test_verdict_rule(low, high, threshold, expected):
    assert verdict(low, high, threshold) == expected


def test_checks_tally_and_summary_say_what_the_intervals_say():
    intervals = {c.key: {"difference": 0.03, "low": 0.01, "high": 0.05, "p_better": 1.0} for c in claims()}
    intervals["raga - western on raga"] = {"difference": -0.01, "low": -0.03, "high": 0.01, "p_better": 0.3}
    intervals["multi - western on western"] = {"difference": -0.04, "low": -0.06, "high": -0.025, "p_better": 0.0}
    result = checks(intervals)
    assert [c["verdict"] for c in result] == ["holds", "unclear", "holds", "holds", "holds", "holds", "contradicted"]
    assert result[-1]["claim"] == "multi loses less than 0.02 on western"
    assert tally(result) == "5 of 7 claims hold, 1 unclear, 1 contradicted"
    level = {"mode": 0.5, "metre": 0.55, "instruments": 0.8}
    groups = {m: {t: dict(level) for t in ("western", "makam", "raga", "greek")}
              for m in ("western", "makam", "raga", "greek", "multi")}
    groups["raga"]["raga"]["instruments"] = 0.83
    text = summary(result, groups)
    assert text.startswith("This run's verdicts: 5 of 7 claims hold, 1 unclear, 1 contradicted")
    assert "Unclear: raga model beats western on raga (-0.010, -0.030 to +0.010): both models read mode (0.50 vs " \
           "0.50), metre (0.55 vs 0.55) near chance; the largest group difference is instruments (+0.03)." in text
    assert "Contradicted: multi loses less than 0.02 on western" in text
    assert Claim("multi", "western", "western", -0.02).sentence == "multi loses less than 0.02 on western"


def test_moving_average_is_a_trailing_mean():
    assert moving_average([1.0, 2.0, 3.0, 4.0, 5.0], 2) == [1.0, 1.5, 2.5, 3.5, 4.5]
    assert moving_average([3.0, 1.0], 5) == [3.0, 2.0]


def test_probes_use_an_evaluation_corpus_apart_from_the_adaptation_corpus(quickstart_run):
    out, _ = quickstart_run
    train = [json.loads(line) for line in (out / "corpus" / "manifest.jsonl").read_text().splitlines()]
    probe = [json.loads(line) for line in (out / "eval-corpus" / "manifest.jsonl").read_text().splitlines()]
    assert {r["split"] for r in train} == {"train"}  # adaptation keeps all of its corpus
    assert not {r["seed"] for r in train} & {r["seed"] for r in probe}  # no shared clip
    task_paths = {json.loads(line)["path"] for t in ("western", "makam", "raga", "greek")
                  for line in (out / "data" / f"task-{t}.jsonl").read_text().splitlines()}
    assert task_paths == {str((out / "eval-corpus" / r["path"]).resolve()) for r in probe}
    trained = {json.loads(line)["path"] for line in (out / "data" / "train-all.jsonl").read_text().splitlines()}
    assert not trained & task_paths
    printed = (out / "report.md").read_text()
    assert printed.startswith("# melos quickstart") and "This run's verdicts:" in printed


def test_a_failing_step_is_named_and_exits_1(tmp_path, monkeypatch, capsys):
    from melos.quickstart import pipeline

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "write_corpus", broken)
    assert main(["quickstart", "--out", str(tmp_path / "q"), "--no-progress"]) == 1
    assert "melos: error: quickstart step '1 corpus' failed: OSError: disk full" in capsys.readouterr().err


def test_quickstart_trains_the_multi_model_for_multi_steps(quickstart_run):
    out, _ = quickstart_run
    steps = {name: len((out / "runs" / name / "metrics.jsonl").read_text().splitlines()) for name in ("makam", "multi")}
    assert steps == {"makam": 4 + 8, "multi": 6 + 12}


def test_multi_recipe_takes_the_multi_steps():
    from melos.quickstart.pipeline import load_config, multi_recipe
    recipe = Path(__file__).parents[1] / "recipes" / "quickstart.yaml"
    cfg = load_config(recipe, ["multi_steps=[3,9]"])
    assert [s.steps for s in multi_recipe(cfg).stages] == [3, 9]
    assert multi_recipe(cfg).stages[1].lr_max == cfg.adapt.stages[1].lr_max
    assert [s.steps for s in multi_recipe(load_config(recipe, ["multi_steps=[]"])).stages] == \
        [s.steps for s in cfg.adapt.stages]
    with pytest.raises(ValueError, match="multi_steps has 1 entries for 2 adapt stages"):
        multi_recipe(load_config(recipe, ["multi_steps=[3]"]))


def test_quickstart_report_and_resume(quickstart_run, capsys):
    out, args = quickstart_run
    report = (out / "report.md").read_text()
    for figure in ("figures/heatmap.png", "figures/lambda.png", "figures/tokens.png", "figures/training.png",
                   "figures/layers_makam.png", "similarity/similarity.png"):
        assert figure in report and (out / figure).stat().st_size > 0, figure
    assert "| western |" in report and "±" in report
    capsys.readouterr()
    assert main(args) == 0  # a rerun finds every step done
    printed = capsys.readouterr().out
    assert printed.count("already done, skipped") == 6 and "report:" in printed


def test_quickstart_probes_again_when_its_probe_results_do_not_fit(quickstart_run, tmp_path, capsys):
    import shutil

    out, args = quickstart_run
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)  # results.json names the models by their old paths
    capsys.readouterr()
    assert main([a if a != str(out) else str(moved) for a in args]) == 0
    printed = capsys.readouterr().out
    assert printed.count("already done, skipped") == 5 and "[6 probe] done" in printed
    results = json.loads((moved / "results.json").read_text())
    assert results["models"].keys() == json.loads((out / "results.json").read_text())["models"].keys()


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "embed" in help_text and "quickstart" in help_text and "merge" in help_text
