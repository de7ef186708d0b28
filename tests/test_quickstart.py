"""The quickstart, scaled down: the same end-to-end run, its outputs and its resume."""

import json
from pathlib import Path

import pytest

from melos.cli import main
from melos.quickstart.report import expectations, group_auc

# Fewer and shorter clips, fewer steps and probe epochs than recipes/quickstart.yaml.
FAST = ["corpus.clips=24", "corpus.seconds=2.0", "pretrain.stages.0.steps=20", "adapt.stages.0.steps=4",
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
    assert len(expectations(results)) == 7
    assert len(results["intervals"]) == 7  # each check's difference, bootstrapped over test clips
    for interval in results["intervals"].values():  # 3 or 4 test clips here: some may be undefined (nan)
        assert set(interval) == {"difference", "low", "high", "p_better"}
    assert all("95% interval over test clips" in text for text, _ in expectations(results))
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


def test_expectations_read_the_effect_from_results():
    def results(own, multi_other, multi_western):
        auc = {m: {t: {"roc_auc": {"mean": 0.7, "std": 0.0}} for t in ("western", "makam", "raga", "greek")}
               for m in ("western", "makam", "raga", "greek", "multi")}
        for t in ("makam", "raga", "greek"):
            auc[t][t]["roc_auc"]["mean"] = own
            auc["multi"][t]["roc_auc"]["mean"] = multi_other
        auc["multi"]["western"]["roc_auc"]["mean"] = multi_western
        return {"models": auc}

    assert all(ok for _, ok in expectations(results(0.8, 0.75, 0.69)))
    assert [ok for _, ok in expectations(results(0.6, 0.75, 0.69))][:3] == [False] * 3
    assert not expectations(results(0.8, 0.75, 0.67))[-1][1]  # multi lost 0.03 on western


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
