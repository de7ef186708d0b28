"""Feature cache: extracted once, keyed by model and task, resumable, bad files skipped."""

import json

import numpy as np
import soundfile as sf
import torch

from melos.cli import main
from melos.evaluation.features import extract_features, load_split
from melos.evaluation.tasks import load_task
from melos.models import load_encoder


def make_task(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for split, n in (("train", 4), ("valid", 2), ("test", 2)):
        for i in range(n):
            path = tmp_path / f"{split}{i}.wav"
            sf.write(path, 0.1 * rng.standard_normal(int(2.5 * 24000)).astype(np.float32), 24000)
            rows.append({"path": path.name, "split": split, "labels": "ab"[i % 2]})
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    rows.append({"path": "broken.wav", "split": "train", "labels": "a"})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "task.yaml").write_text("name: demo\ntype: multiclass\nmanifest: m.jsonl\nwindow: 1\n")
    return load_task(tmp_path / "task.yaml")


def test_extract_load_and_resume(tmp_path):
    task = make_task(tmp_path)
    torch.manual_seed(0)
    encoder = load_encoder("mert-tiny")
    folder, summary = extract_features(encoder, task, tmp_path / "cache", progress=False)
    assert summary.n_done == 8 and list(summary.failed) == [str(tmp_path / "broken.wav")]
    train = load_split(folder, task, "train")
    assert train.features.shape == (3, 4 * 2, 64)  # 2.5 s at 1 s windows: 2 windows (0.5 s tail dropped)
    assert train.groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and train.targets.tolist() == [0, 1, 0, 1]
    with torch.no_grad():
        audio = torch.from_numpy(sf.read(tmp_path / "train1.wav", dtype="float32")[0])
        states = encoder(audio[None, 24000:48000]).hidden_states
    assert torch.allclose(train.features[:, 3], torch.stack([s[0].mean(0) for s in states]), atol=2e-5)
    again, summary = extract_features(encoder, task, tmp_path / "cache", progress=False)
    assert again == folder and summary.n_skipped == 8 and summary.n_done == 0
    other, _ = extract_features(load_encoder("mert-tiny", seed=1), task, tmp_path / "cache", progress=False)
    assert other != folder  # another model never reads these features


def test_cli_features(tmp_path, capsys):
    make_task(tmp_path)
    load_encoder("mert-tiny").save_pretrained(tmp_path / "model")
    code = main(["features", "--model", str(tmp_path / "model"), "--task", str(tmp_path / "task.yaml"),
                 "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr()
    assert "8 files" in out.out and "broken.wav" in out.err


def test_cli_features_allow_truncated_fills_in_a_truncated_file(tmp_path, capsys):
    make_task(tmp_path)
    data = (tmp_path / "train0.wav").read_bytes()
    (tmp_path / "train0.wav").write_bytes(data[: len(data) // 2])
    load_encoder("mert-tiny").save_pretrained(tmp_path / "model")
    args = ["features", "--model", str(tmp_path / "model"), "--task", str(tmp_path / "task.yaml"),
            "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "2 skipped as unreadable" in out.out and "train0.wav: file is truncated" in out.err
    assert main([*args, "--allow-truncated"]) == 0
    assert "(7 cached earlier), 1 skipped as unreadable" in capsys.readouterr().out  # only broken.wav is left
