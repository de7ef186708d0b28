"""`melos merge ...` end to end on tiny generated checkpoints."""

import json

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from melos.cli import main


def flat_task_vector(base, model):
    theta, w = load_file(base / "model.safetensors"), load_file(model / "model.safetensors")
    return torch.cat([(w[k] - theta[k]).flatten() for k in sorted(theta)])


def test_merge_methods_from_the_command_line(tiny_models, tmp_path, capsys):
    base, models = tiny_models
    models = [str(m) for m in models]
    assert main(["merge", "task-arithmetic", "--base", str(base), "--models", *models, "--lambda", "0.2",
                 "--out", str(tmp_path / "ta"), "--no-progress"]) == 0
    assert "zero task vector (frozen?) in cnn" in capsys.readouterr().out
    assert main(["merge", "ties", "--base", str(base), "--models", *models, "--density", "0.1", "--trim", "model",
                 "--out", str(tmp_path / "ties"), "--no-progress"]) == 0
    assert main(["merge", "dare", "--base", str(base), "--models", *models, "--drop", "0.3", "--seed", "7",
                 "--out", str(tmp_path / "dare"), "--no-progress"]) == 0
    assert main(["merge", "average", "--base", str(base), "--models", *models, "--exclude", "cnn", "pos_conv",
                 "--out", str(tmp_path / "avg"), "--no-progress"]) == 0
    params = json.loads((tmp_path / "ties" / "merge.json").read_text())["params"]
    assert params["density"] == 0.1 and params["trim"] == "model"
    assert json.loads((tmp_path / "dare" / "merge.json").read_text())["seed"] == 7


def test_merge_recipe(tiny_models, tmp_path):
    base, models = tiny_models
    recipe = tmp_path / "merge.yaml"
    recipe.write_text(f"base: {base}\nmodels: [{models[0]}, {models[1]}]\nmethod: task_arithmetic\n"
                      f"lambda: 0.25\nout: merged/ta\n")
    assert main(["merge", "--recipe", str(recipe)]) == 0
    assert json.loads((tmp_path / "merged" / "ta" / "merge.json").read_text())["params"]["weights"] == [0.25]
    recipe.write_text(f"base: {base}\nmodels: [{models[0]}]\nlamda: 0.2\nout: x\n")
    assert main(["merge", "--recipe", str(recipe)]) == 2  # the typo is named


def test_merge_without_a_method_explains(capsys):
    assert main(["merge"]) == 2
    assert "melos merge --recipe" in capsys.readouterr().err


def test_similarity_matrix_table_and_plots(tiny_models, tmp_path):
    base, models = tiny_models
    assert main(["merge", "similarity", str(base), *map(str, models), "--out", str(tmp_path / "sim"),
                 "--no-progress"]) == 0
    result = json.loads((tmp_path / "sim" / "similarity.json").read_text())
    taus = [flat_task_vector(base, m) for m in models]
    for i in range(3):
        for j in range(3):
            expected = F.cosine_similarity(taus[i], taus[j], dim=0).item()
            assert abs(result["whole"][i][j] - expected) < 1e-5
    assert result["models"] == ["culture0", "culture1", "culture2"]
    assert {"cnn", "pos_conv", "block.0", "block.1"} <= set(result["groups"])
    assert result["groups"]["cnn"][0][1] == 0.0  # frozen front end: zero task vectors
    for name in ("similarity.md", "similarity.png", "similarity_groups.png"):
        assert (tmp_path / "sim" / name).stat().st_size > 0


def test_lambda_sweep_probes_each_merged_model(tiny_models, tmp_path, tone_task):
    base, models = tiny_models
    task = tone_task(tmp_path, "multiclass")
    out = tmp_path / "sweep"
    args = ["merge", "sweep", "--base", str(base), "--models", *map(str, models[:2]), "--task", str(task),
            "--lambdas", "0.2", "1.0", "--seeds", "1", "--epochs", "3", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert table["lambdas"] == [0.2, 1.0]
    row = table["tasks"]["tones-multiclass"]
    assert row["metric"] == "accuracy" and len(row["valid"]) == 2 and len(row["test"]) == 2
    assert table["best"]["tones-multiclass"] in (0.2, 1.0)
    assert (out / "ta-0.2" / "merge.json").is_file() and (out / "sweep.png").stat().st_size > 0
    stamp = (out / "ta-0.2" / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0  # a rerun reuses the merged models
    assert (out / "ta-0.2" / "model.safetensors").stat().st_mtime_ns == stamp
