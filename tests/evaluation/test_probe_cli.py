"""melos probe end to end on generated audio: a learnable multiclass and multilabel task."""

import json

import pytest
from safetensors.torch import load_file

from melos.cli import main
from melos.evaluation.metrics import roc_auc_macro


def test_probe_cli(tmp_path, capsys, tone_task):
    tasks = [tone_task(tmp_path, "multiclass"), tone_task(tmp_path, "multilabel")]
    # a rare tag that only two test items carry (the vocabulary is counted on train): dropped, reported
    manifest = tmp_path / "multilabel.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in [r for r in rows if r["split"] == "test"][:2]:
        row["labels"] = row["labels"] + ["culture-x"]
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    args = ["probe", "--model", "mert-tiny", "--out", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
            "--seeds", "2", "--epochs", "8", "--no-progress"]
    for task in tasks:
        args += ["--task", str(task)]
    assert main(args) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    summary = results["summary"]["mert-tiny"]
    assert summary["tones-multiclass"]["accuracy"]["mean"] > 0.8
    assert summary["tones-multilabel"]["roc_auc"]["mean"] > 0.8
    assert results["runs"]["mert-tiny"]["tones-multilabel"]["dropped_labels"] == {"test": {"culture-x": 2}}
    run = results["runs"]["mert-tiny"]["tones-multiclass"]
    assert len(run["grid"]) == 4 * 6 and run["chosen"]["valid"] == max(g["valid"] for g in run["grid"])
    # The saved test outputs are the chosen member's, per seed: they give back the reported metric.
    saved = load_file(tmp_path / "results" / results["runs"]["mert-tiny"]["tones-multilabel"]["test_outputs"])
    assert saved["outputs"].shape == (2, 6, 3) and saved["targets"].shape == (6, 3)
    auc, _ = roc_auc_macro(saved["outputs"], saved["targets"])
    assert float(auc.mean()) == pytest.approx(summary["tones-multilabel"]["roc_auc"]["mean"], abs=1e-6)
    table = (tmp_path / "results" / "results.md").read_text()
    assert "| mert-tiny |" in table and "±" in table and "tones-multilabel roc_auc" in table
    assert "chosen layer" in capsys.readouterr().out

    assert main(["report", str(tmp_path / "results" / "results.json"), "--out", str(tmp_path / "report")]) == 0
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["heatmap.png", "layers_tones-multiclass.png", "layers_tones-multilabel.png", "table.md"]
    assert (tmp_path / "report" / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", str(tmp_path / "nope.json"), "--out", str(tmp_path / "r2")]) == 2


def test_probes_see_standardised_features(tmp_path, tone_task, monkeypatch):
    """Scaling and shifting any feature dimension changes nothing: the protocol standardises
    each layer and dimension with the training split's statistics before probing."""
    import torch

    from melos.evaluation import protocol
    from melos.evaluation.features import extract_features
    from melos.evaluation.probe import ProbeConfig
    from melos.evaluation.tasks import load_task

    task = load_task(tone_task(tmp_path, "multilabel"))
    folder, _ = extract_features("mert-tiny", task, tmp_path / "cache", progress=False)
    config = ProbeConfig(task.type, max_epochs=4)
    plain = protocol.probe_task(folder, task, config, seeds=1, lrs=(1e-3,))
    scale = torch.logspace(-3, 3, 64)
    load_split = protocol.load_split

    def distorted(*args):
        split = load_split(*args)
        split.features = split.features * scale + 100.0
        return split

    monkeypatch.setattr(protocol, "load_split", distorted)
    moved = protocol.probe_task(folder, task, config, seeds=1, lrs=(1e-3,))
    for a, b in zip(plain["grid"], moved["grid"]):
        assert abs(a["valid"] - b["valid"]) < 1e-3 and abs(a["test"]["ap"] - b["test"]["ap"]) < 1e-3


def test_probe_cli_with_an_efficient_encoder(tmp_path, tone_task):
    import torch

    torch.manual_seed(0)  # the preset's random weights
    task = tone_task(tmp_path, "multiclass")
    assert main(["probe", "--model", "branchformer-sm-tiny", "--task", str(task), "--out", str(tmp_path / "results"),
                 "--cache", str(tmp_path / "cache"), "--seeds", "1", "--epochs", "8", "--no-progress"]) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    run = results["runs"]["branchformer-sm-tiny"]["tones-multiclass"]
    assert {g["layer"] for g in run["grid"]} == {0, 1, 2, "weighted"}  # front end, 2 blocks, learned mix
    assert results["summary"]["branchformer-sm-tiny"]["tones-multiclass"]["accuracy"]["mean"] > 0.8
