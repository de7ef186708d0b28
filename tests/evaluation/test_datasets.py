"""Dataset readers on tiny fabricated metadata in each official layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from melos.evaluation.datasets import giantsteps_key, gtzan, magnatagatune, normalise_key, nsynth, write_task
from melos.evaluation.tasks import load_task

MTAT_CLIPS = {
    "f/a.mp3": (1, 0, 1),
    "f/b.mp3": (1, 1, 0),
    "0/c.mp3": (0, 0, 1),
    "0/d.mp3": (0, 1, 1),
}


def _mtat(root: Path, as_text: bool = False) -> None:
    header = "\t".join(f'"{c}"' for c in ("clip_id", "guitar", "piano", "rock", "mp3_path"))
    lines = [header] + [
        "\t".join([f'"{n}"', *(f'"{v}"' for v in tags), f'"{mp3}"'])
        for n, (mp3, tags) in enumerate(MTAT_CLIPS.items())
    ]
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    splits = {"train": ["f/a.mp3", "f/b.mp3", "0/d.mp3"], "valid": ["0/c.mp3"], "test": ["f/b.mp3"]}
    for split, mp3s in splits.items():
        if as_text:
            (root / f"{split}.txt").write_text("\n".join(mp3s) + "\n")
        else:
            index = list(MTAT_CLIPS)
            np.save(root / f"{split}.npy", np.array([f"{index.index(m)}\t{m}" for m in mp3s]))


@pytest.mark.parametrize("as_text", [False, True])
def test_magnatagatune_rows(tmp_path: Path, as_text: bool) -> None:
    _mtat(tmp_path, as_text)
    rows = magnatagatune(tmp_path)
    mp3 = str(tmp_path / "mp3")
    assert rows == [
        {"path": f"{mp3}/f/a.mp3", "split": "train", "labels": ["guitar", "rock"]},
        {"path": f"{mp3}/f/b.mp3", "split": "train", "labels": ["guitar", "piano"]},
        {"path": f"{mp3}/0/d.mp3", "split": "train", "labels": ["piano", "rock"]},
        {"path": f"{mp3}/0/c.mp3", "split": "valid", "labels": ["rock"]},
        {"path": f"{mp3}/f/b.mp3", "split": "test", "labels": ["guitar", "piano"]},
    ]


def test_magnatagatune_task_top_k(tmp_path: Path) -> None:
    _mtat(tmp_path)
    task = load_task(write_task(magnatagatune(tmp_path), tmp_path / "tasks", "mtat", "multilabel", top_k=2))
    assert task.top_k == 2 and task.window == 30.0
    assert task.vocabulary == ["guitar", "piano"]  # train counts: guitar 2, piano 2, rock 2 -> alphabetical


def test_magnatagatune_errors(tmp_path: Path) -> None:
    _mtat(tmp_path)
    (tmp_path / "test.npy").unlink()
    with pytest.raises(FileNotFoundError, match="test.npy"):
        magnatagatune(tmp_path)
    (tmp_path / "test.txt").write_text("f/a.mp3\nf/zzz.mp3\n")
    with pytest.raises(ValueError, match=r"test.txt:2: 'f/zzz.mp3'"):
        magnatagatune(tmp_path)


def _gtzan(root: Path) -> None:
    (root / "train_filtered.txt").write_text("blues/blues.00000.wav\nrock/rock.00003.wav\n\n")
    (root / "valid_filtered.txt").write_text("jazz/jazz.00010.wav\n")
    (root / "test_filtered.txt").write_text("rock/rock.00042.wav\nblues/blues.00001.wav\n")


def test_gtzan_rows_and_task(tmp_path: Path) -> None:
    _gtzan(tmp_path)
    rows = gtzan(tmp_path)
    genres = tmp_path / "genres"
    assert rows == [
        {"path": str(genres / "blues/blues.00000.wav"), "split": "train", "labels": "blues"},
        {"path": str(genres / "rock/rock.00003.wav"), "split": "train", "labels": "rock"},
        {"path": str(genres / "jazz/jazz.00010.wav"), "split": "valid", "labels": "jazz"},
        {"path": str(genres / "rock/rock.00042.wav"), "split": "test", "labels": "rock"},
        {"path": str(genres / "blues/blues.00001.wav"), "split": "test", "labels": "blues"},
    ]
    rows.append({"path": str(genres / "blues/blues.00002.wav"), "split": "train", "labels": "jazz"})
    path = write_task(rows, tmp_path / "tasks", "gtzan", "multiclass", window=10.0, max_duration=30.0)
    assert path == tmp_path / "tasks" / "gtzan.yaml"
    assert sorted(p.name for p in path.parent.iterdir()) == ["gtzan.jsonl", "gtzan.yaml"]
    task = load_task(path)
    assert (task.name, task.type, task.window, task.max_duration) == ("gtzan", "multiclass", 10.0, 30.0)
    assert task.vocabulary == ["blues", "jazz", "rock"]
    test_paths = [str(genres / "rock/rock.00042.wav"), str(genres / "blues/blues.00001.wav")]
    assert [item.path for item in task.split("test")] == test_paths
    assert task.encode(task.split("test")).tolist() == [2, 0]


def test_gtzan_errors(tmp_path: Path) -> None:
    _gtzan(tmp_path)
    (tmp_path / "valid_filtered.txt").write_text("jazz/jazz.00010.wav\njazz.00011.wav\n")
    with pytest.raises(ValueError, match=r"valid_filtered.txt:2"):
        gtzan(tmp_path)
    (tmp_path / "valid_filtered.txt").unlink()
    with pytest.raises(FileNotFoundError, match="valid_filtered.txt"):
        gtzan(tmp_path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("C# minor", "C# minor"),
        ("Eb major", "D# major"),
        ("bb MINOR", "A# minor"),
        ("Cb major", "B major"),
        ("E# minor", "F minor"),
        ("A major", "A major"),
    ],
)
def test_normalise_key(text: str, key: str) -> None:
    assert normalise_key(text) == key


def _giantsteps(root: Path, keys: dict[str, str]) -> None:
    (root / "annotations" / "key").mkdir(parents=True)
    for stem, key in keys.items():
        (root / "annotations" / "key" / f"{stem}.LOFI.key").write_text(key + "\n")


GS_KEYS = {
    str(n): k for n, k in enumerate(["Eb major", "C minor", "G major", "F# minor", "Ab minor"] * 2, start=100)
}


def test_giantsteps_key_own_split(tmp_path: Path) -> None:
    _giantsteps(tmp_path, GS_KEYS)
    rows = giantsteps_key(tmp_path, seed=3)
    assert rows == giantsteps_key(tmp_path, seed=3)
    assert [r["split"] for r in rows].count("test") == 2  # round(10 * 0.2)
    assert [r["split"] for r in rows].count("valid") == 1  # round(8 * 0.1)
    expected = {
        str(tmp_path / "audio" / f"{stem}.LOFI.mp3"): normalise_key(key) for stem, key in GS_KEYS.items()
    }
    assert {r["path"]: r["labels"] for r in rows} == expected and len(rows) == 10
    def held_out(rows: list[dict]) -> set[tuple[str, str]]:
        return {(r["path"], r["split"]) for r in rows if r["split"] != "train"}

    assert held_out(giantsteps_key(tmp_path, seed=4)) != held_out(rows)
    task = load_task(write_task(rows, tmp_path / "tasks", "key", "key"))
    assert sorted(task.encode(task.items).tolist()) == sorted([3, 12, 7, 18, 20] * 2)


def test_giantsteps_key_mtg_train(tmp_path: Path) -> None:
    _giantsteps(tmp_path, {"1": "Eb major", "2": "A minor"})
    _giantsteps(tmp_path / "mtg", {str(n): "Bb minor" for n in range(20)})
    rows = giantsteps_key(tmp_path, valid_fraction=0.25)
    test = [r for r in rows if r["split"] == "test"]
    assert test == [
        {"path": str(tmp_path / "audio/1.LOFI.mp3"), "split": "test", "labels": "D# major"},
        {"path": str(tmp_path / "audio/2.LOFI.mp3"), "split": "test", "labels": "A minor"},
    ]
    train = [r for r in rows if r["split"] == "train"]
    valid = [r for r in rows if r["split"] == "valid"]
    assert (len(train), len(valid)) == (15, 5)
    mtg_audio = str(tmp_path / "mtg" / "audio")
    assert all(r["path"].startswith(mtg_audio) and r["labels"] == "A# minor" for r in train + valid)


def test_giantsteps_key_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="annotations/key"):
        giantsteps_key(tmp_path)
    _giantsteps(tmp_path, {"1": "Eb major", "2": "H dorian"})
    with pytest.raises(ValueError, match=r"2\.LOFI\.key.*H dorian"):
        giantsteps_key(tmp_path)


def _nsynth(root: Path) -> None:
    examples = {
        "train": {"guitar_acoustic_001-060-100": ("guitar", 60), "bass_synthetic_009-024-050": ("bass", 24)},
        "valid": {"flute_acoustic_002-072-075": ("flute", 72)},
        "test": {"keyboard_electronic_001-021-127": ("keyboard", 21)},
    }
    for split, notes in examples.items():
        folder = root / f"nsynth-{split}"
        folder.mkdir()
        data = {k: {"instrument_family_str": fam, "pitch": p, "velocity": 100} for k, (fam, p) in notes.items()}
        (folder / "examples.json").write_text(json.dumps(data))


def test_nsynth_targets(tmp_path: Path) -> None:
    _nsynth(tmp_path)
    rows = nsynth(tmp_path)
    train_audio = tmp_path / "nsynth-train" / "audio"
    assert rows[:2] == [
        {"path": str(train_audio / "bass_synthetic_009-024-050.wav"), "split": "train", "labels": "bass"},
        {"path": str(train_audio / "guitar_acoustic_001-060-100.wav"), "split": "train", "labels": "guitar"},
    ]
    assert [(r["split"], r["labels"]) for r in rows[2:]] == [("valid", "flute"), ("test", "keyboard")]
    assert rows[3]["path"] == str(tmp_path / "nsynth-test" / "audio" / "keyboard_electronic_001-021-127.wav")
    assert [r["labels"] for r in nsynth(tmp_path, target="pitch")] == ["24", "60", "72", "21"]
    with pytest.raises(ValueError, match="target"):
        nsynth(tmp_path, target="velocity")


def test_nsynth_errors(tmp_path: Path) -> None:
    _nsynth(tmp_path)
    (tmp_path / "nsynth-valid" / "examples.json").write_text(json.dumps({"x": {"pitch": 60}}))
    with pytest.raises(ValueError, match=r"nsynth-valid.*'x'.*instrument_family_str"):
        nsynth(tmp_path)
    (tmp_path / "nsynth-valid" / "examples.json").unlink()
    with pytest.raises(FileNotFoundError, match="nsynth-valid"):
        nsynth(tmp_path)


def test_cli_writes_a_gtzan_task(tmp_path, capsys):
    from melos.cli import main
    from melos.evaluation.tasks import load_task

    root = tmp_path / "gtzan"
    root.mkdir()
    for split, names in (("train", ["blues/blues.00000.wav", "rock/rock.00001.wav"]),
                         ("valid", ["blues/blues.00002.wav"]), ("test", ["rock/rock.00003.wav"])):
        (root / f"{split}_filtered.txt").write_text("\n".join(names) + "\n")
    assert main(["data", "task", "gtzan", str(root), "--out", str(tmp_path / "tasks")]) == 0
    task = load_task(tmp_path / "tasks" / "gtzan.yaml")
    assert task.vocabulary == ["blues", "rock"] and len(task.split("train")) == 2
    assert "4 items" in capsys.readouterr().out
