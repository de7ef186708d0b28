"""Report helpers: the layer curve takes, per layer, the lr chosen on validation."""

import json

from melos.cli import main
from melos.evaluation.report import layer_curve


def test_layer_curve_uses_validation_to_pick_the_lr():
    run = {"primary": "accuracy", "grid": [
        {"layer": 0, "lr": 1e-3, "valid": 0.5, "test": {"accuracy": 0.9}},
        {"layer": 0, "lr": 1e-2, "valid": 0.6, "test": {"accuracy": 0.4}},
        {"layer": 1, "lr": 1e-3, "valid": 0.7, "test": {"accuracy": 0.7}},
        {"layer": "weighted", "lr": 1e-3, "valid": 0.9, "test": {"accuracy": 0.95}},
    ]}
    assert layer_curve(run) == ([0, 1], [0.4, 0.7])


def results_file(path, suite, task, primary, mean):
    """A results.json as `melos probe --suite` writes it, one model and one task."""
    test = {primary: {"mean": mean, "std": 0.01}}
    run = {"primary": primary, "test": test,
           "grid": [{"layer": layer, "lr": 1e-3, "valid": 0.5, "test": {primary: mean}} for layer in (0, 1)]}
    path.write_text(json.dumps({"runs": {"m": {task: run}}, "summary": {"m": {task: test}}, "suites": [suite]}))
    return str(path)


def test_report_merges_two_suites_into_one_table(tmp_path):
    files = [results_file(tmp_path / "a.json", "culturemert", "makam", "roc_auc", 0.85),
             results_file(tmp_path / "b.json", "efficient", "gtzan", "accuracy", 0.70)]
    assert main(["report", *files, "--out", str(tmp_path / "report")]) == 0
    table = (tmp_path / "report" / "table.md").read_text()
    culturemert, efficient = table.split("## culturemert suite")[1].split("## efficient suite")
    assert "| makam | roc_auc | 85.0 | 83.2 | +1.8 |" in culturemert
    assert "| gtzan | accuracy | 70.0 | 74.8 | 68.9 | -4.8 | +1.1 |" in efficient
    assert (tmp_path / "report" / "layers_gtzan.png").is_file()
