"""melos probe end to end on generated audio: a learnable multiclass and multilabel task."""

import json

import numpy as np
import soundfile as sf

from melos.cli import main


def tone_task(tmp_path, kind):
    """Low vs high tones: the label is audible, so a probe must beat chance."""
    rng = np.random.default_rng(0)
    t = np.arange(24000) / 24000
    rows = []
    for split, n in (("train", 16), ("valid", 6), ("test", 6)):
        for i in range(n):
            high = i % 2 == 1
            freq = rng.uniform(1500, 3000) if high else rng.uniform(80, 200)
            path = tmp_path / f"{kind}-{split}{i}.wav"
            sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 24000)
            label = ("high" if high else "low") if kind == "multiclass" else (["high", "bright"] if high else ["low"])
            rows.append({"path": path.name, "split": split, "labels": label})
    (tmp_path / f"{kind}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / f"{kind}.yaml").write_text(f"name: tones-{kind}\ntype: {kind}\nmanifest: {kind}.jsonl\nwindow: 1\n")
    return tmp_path / f"{kind}.yaml"


def test_probe_cli(tmp_path, capsys):
    tasks = [tone_task(tmp_path, "multiclass"), tone_task(tmp_path, "multilabel")]
    args = ["probe", "--model", "mert-tiny", "--out", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
            "--seeds", "2", "--epochs", "8", "--no-progress"]
    for task in tasks:
        args += ["--task", str(task)]
    assert main(args) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    summary = results["summary"]["mert-tiny"]
    assert summary["tones-multiclass"]["accuracy"]["mean"] > 0.8
    assert summary["tones-multilabel"]["roc_auc"]["mean"] > 0.8
    run = results["runs"]["mert-tiny"]["tones-multiclass"]
    assert len(run["grid"]) == 4 * 6 and run["chosen"]["valid"] == max(g["valid"] for g in run["grid"])
    table = (tmp_path / "results" / "results.md").read_text()
    assert "| mert-tiny |" in table and "±" in table and "tones-multilabel roc_auc" in table
    assert "chosen layer" in capsys.readouterr().out

    assert main(["report", str(tmp_path / "results" / "results.json"), "--out", str(tmp_path / "report")]) == 0
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["heatmap.png", "layers_tones-multiclass.png", "layers_tones-multilabel.png", "table.md"]
    assert (tmp_path / "report" / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", str(tmp_path / "nope.json"), "--out", str(tmp_path / "r2")]) == 2
