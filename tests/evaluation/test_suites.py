"""`melos probe --suite`: the tasks present under the data root are written, probed and tabled
beside the published numbers; the missing ones are listed."""

import json

import numpy as np
import pytest
import soundfile as sf

from melos.cli import main
from melos.evaluation.suites import SUITES, prepare_suite, suite_table

SR = 24000


def gtzan_layout(root):
    """GTZAN as distributed (genres/<genre>/<genre>.000NN.wav) with fault-filtered split lists:
    two genres, a low tone and a high one, four clips per split."""
    t = np.arange(SR) / SR
    lists = {"train": [], "valid": [], "test": []}
    for genre, freq in (("blues", 220.0), ("metal", 1760.0)):
        (root / "genres" / genre).mkdir(parents=True)
        for i in range(12):
            name = f"{genre}/{genre}.{i:05d}.wav"
            sf.write(root / "genres" / name, 0.3 * np.sin(2 * np.pi * freq * (1 + 0.01 * i) * t), SR)
            lists[("train", "valid", "test")[i // 4]].append(name)
    for split, names in lists.items():
        (root / f"{split}_filtered.txt").write_text("\n".join(names) + "\n")


def test_suite_tables_every_task_beside_its_published_number(tmp_path):
    summary = {"m": {"magnatagatune": {"roc_auc": {"mean": 0.9}, "ap": {"mean": 0.4}}}}
    table = suite_table("culturemert", summary)
    assert "| magnatagatune | roc_auc | 90.0 | 89.6 | +0.4 |" in table
    assert "| makam | roc_auc | - | 83.2 | - |" in table  # not run: no value, no difference
    assert len(table.splitlines()) == 2 + sum(len(t.metrics) for t in SUITES["culturemert"])
    with pytest.raises(ValueError, match="suite must be one of"):
        prepare_suite("marble", tmp_path, tmp_path)


def test_probe_suite_runs_what_is_there_and_lists_the_rest(tmp_path, capsys, monkeypatch):
    gtzan_layout(tmp_path / "data" / "gtzan")
    out = tmp_path / "results"
    monkeypatch.chdir(tmp_path)  # a relative --data-root works as an absolute one
    assert main(["probe", "--model", "mert-tiny", "--suite", "efficient", "--data-root", "data",
                 "--out", str(out), "--seeds", "1", "--epochs", "5", "--cache", str(tmp_path / "cache"),
                 "--no-progress"]) == 0
    text = (out / "suite.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| gtzan | accuracy |"))
    accuracy = float(row.split("|")[3])
    assert 0 <= accuracy <= 100 and "| 74.8 |" in row
    assert "skipped magnatagatune: no folder" in text and "skipped vocalset-singer: no folder" in text
    assert (out / "tasks" / "gtzan.yaml").is_file()
    assert json.loads((out / "results.json").read_text())["suites"] == ["efficient"]  # for `melos report`
    assert main(["probe", "--model", "mert-tiny", "--suite", "efficient", "--out", str(out)]) == 2
    assert "--suite needs --data-root" in capsys.readouterr().err


def test_culturemert_reads_the_dunya_collections_else_saraga(tmp_path):
    """The paper's Carnatic set is Dunya's (ccml layout, folder carnatic/); with only Saraga 1.5
    under the root, its subset stands in and the table names it."""
    for i in range(10):
        folder = tmp_path / "saraga1.5_carnatic" / "Concert" / f"Title {i}"
        folder.mkdir(parents=True)
        raga = ("Todi", "Kalyani")[i % 2]
        (folder / f"Title {i}.json").write_text(json.dumps({"mbid": f"m{i}", "raaga": [{"common_name": raga}]}))
        (folder / f"Title {i}.mp3.mp3").touch()
    tasks, missing = prepare_suite("culturemert", tmp_path, tmp_path / "out")
    assert [task.name for task in tasks] == ["saraga-carnatic"]
    assert any(line.startswith("dunya-hindustani: no folder") and "saraga1.5_hindustani" in line
               for line in missing)
    table = suite_table("culturemert", {"m": {"saraga-carnatic": {"roc_auc": {"mean": 0.7}}}})
    assert "| saraga-carnatic | roc_auc | 70.0 | 74.9 | -4.9 |" in table
    assert "| dunya-hindustani | roc_auc | - | 82.4 | - |" in table
