"""Dataset readers on tiny fabricated metadata in each official layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melos.audio import load
from melos.evaluation.dataset_files import MissingAudioWarning
from melos.evaluation.datasets import giantsteps_key, gtzan, magnatagatune, normalise_key, nsynth, write_task
from melos.evaluation.tasks import load_task

MTAT_CLIPS = {  # the real file's path pattern: <hex dir>/<artist>-<album>-<track>-<start>-<end>.mp3
    "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3": (1, 0, 1),
    "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-146-175.mp3": (1, 1, 0),
    "0/american_bach_soloists-joseph_haydn__masses-01-kyrie__allegro_moderato-0-29.mp3": (0, 0, 1),
    "0/william_brooks-bitter_circus-01-the_hanging_of_allen_scott_johnson-117-146.mp3": (0, 1, 1),
    "c/lisa_debenedictis-fruitless-05-sick_and_tired-88-117.mp3": (0, 0, 0),
}
A, B, C, D, E = MTAT_CLIPS


def tone(path: Path, sample_rate: int = 16000, seconds: float = 0.2, **kwargs) -> Path:
    """A short tone in the dataset's own audio format (MP3, AU, WAV: from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sample_rate, **kwargs)
    return path


def _mtat(root: Path, layout: str = "tsv", audio: bool = True) -> None:
    """annotations_final.csv as distributed (tab-separated, every field quoted, clip_id first and
    mp3_path last) and the split lists as MARBLE (tsv), musicnn (npy) or by hand (txt) give them."""
    header = "\t".join(f'"{c}"' for c in ("clip_id", "guitar", "piano", "rock", "mp3_path"))
    lines = [header] + [
        "\t".join([f'"{n}"', *(f'"{v}"' for v in tags), f'"{mp3}"'])
        for n, (mp3, tags) in enumerate(MTAT_CLIPS.items(), start=2)
    ]
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    splits = {"train": [A, B, D], "valid": [C], "test": [B]}
    index = list(MTAT_CLIPS)
    for split, mp3s in splits.items():
        entries = [f"{index.index(m)}\t{m}" for m in mp3s]
        if layout == "tsv":
            (root / f"{split}.tsv").write_text("\n".join(entries) + "\n")
        elif layout == "npy":
            np.save(root / f"{split}.npy", np.array(entries))
        else:
            (root / f"{split}.txt").write_text("\n".join(mp3s) + "\n")
    if audio:
        for mp3 in MTAT_CLIPS:
            tone(root / "mp3" / mp3)


@pytest.mark.parametrize("layout", ["tsv", "npy", "txt"])
def test_magnatagatune_rows(tmp_path: Path, layout: str) -> None:
    _mtat(tmp_path, layout)
    rows = magnatagatune(tmp_path)
    mp3 = tmp_path / "mp3"
    assert rows == [
        {"path": str(mp3 / A), "split": "train", "labels": ["guitar", "rock"]},
        {"path": str(mp3 / B), "split": "train", "labels": ["guitar", "piano"]},
        {"path": str(mp3 / D), "split": "train", "labels": ["piano", "rock"]},
        {"path": str(mp3 / C), "split": "valid", "labels": ["rock"]},
        {"path": str(mp3 / B), "split": "test", "labels": ["guitar", "piano"]},
    ]
    assert load(rows[0]["path"], 16000).shape[-1] == 3200  # the fixture's MP3 decodes


def test_magnatagatune_top_tags_are_counted_over_the_whole_dataset(tmp_path: Path) -> None:
    _mtat(tmp_path)
    # over every clip: rock 3, guitar 2, piano 2; over the training split alone guitar, piano and rock tie
    rows = magnatagatune(tmp_path, top=1)
    assert {tag for row in rows for tag in row["labels"]} == {"rock"}
    assert rows[1]["labels"] == []  # B has no top tag: kept (the split lists hold it), with no label
    task = load_task(write_task(magnatagatune(tmp_path), tmp_path / "tasks", "mtat", "multilabel", top_k=50))
    assert task.vocabulary == ["guitar", "piano", "rock"] and task.window == 30.0


def test_magnatagatune_errors(tmp_path: Path) -> None:
    _mtat(tmp_path, "txt")
    (tmp_path / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"test.tsv: file not found \(nor test.npy, test.txt\)"):
        magnatagatune(tmp_path)
    (tmp_path / "test.txt").write_text(f"{A}\nf/zzz.mp3\n")
    with pytest.raises(ValueError, match=r"test.txt:2: 'f/zzz.mp3'"):
        magnatagatune(tmp_path)
    (tmp_path / "test.txt").write_text(f"{B}\n")
    (tmp_path / "mp3" / D).unlink()
    with pytest.warns(MissingAudioWarning, match=r"1 of 5 listed recordings have no audio file and are left out"):
        assert [row["path"] for row in magnatagatune(tmp_path)] == [str(tmp_path / "mp3" / m) for m in (A, B, C, B)]


GTZAN_SPLITS = {  # the fault-filtered split's line format
    "train": ["blues/blues.00000.wav", "rock/rock.00003.wav", "jazz/jazz.00002.wav"],
    "valid": ["jazz/jazz.00010.wav"],
    "test": ["rock/rock.00042.wav", "blues/blues.00001.wav"],
}


def _gtzan(root: Path, layout: str = "genres.tar.gz") -> Path:
    """The split lists, and the audio as genres.tar.gz (genres/, .au) or the Kaggle zip
    (Data/genres_original/, .wav) unpack it; returns the audio folder."""
    for split, lines in GTZAN_SPLITS.items():
        (root / f"{split}_filtered.txt").write_text("\n".join(lines) + "\n\n")
    audio = root / ("genres" if layout == "genres.tar.gz" else "Data/genres_original")
    for line in [line for lines in GTZAN_SPLITS.values() for line in lines]:
        if layout == "genres.tar.gz":
            tone(audio / Path(line).with_suffix(".au"), 22050, subtype="PCM_16")
        else:
            tone(audio / line, 22050)
    return audio


@pytest.mark.parametrize(("layout", "suffix"), [("genres.tar.gz", ".au"), ("kaggle", ".wav")])
def test_gtzan_rows_and_task(tmp_path: Path, layout: str, suffix: str) -> None:
    audio = _gtzan(tmp_path, layout)
    rows = gtzan(tmp_path)
    assert rows == [
        {"path": str((audio / line).with_suffix(suffix)), "split": split, "labels": line.split("/")[0]}
        for split, lines in GTZAN_SPLITS.items() for line in lines
    ]
    assert load(rows[0]["path"], 22050).shape[-1] == 4410
    path = write_task(rows, tmp_path / "tasks", "gtzan", "multiclass", window=10.0, max_duration=30.0)
    assert path == tmp_path / "tasks" / "gtzan.yaml"
    assert sorted(p.name for p in path.parent.iterdir()) == ["gtzan.jsonl", "gtzan.yaml"]
    task = load_task(path)
    assert (task.name, task.type, task.window, task.max_duration) == ("gtzan", "multiclass", 10.0, 30.0)
    assert task.vocabulary == ["blues", "jazz", "rock"]
    assert [item.path for item in task.split("test")] == [rows[4]["path"], rows[5]["path"]]
    assert task.encode(task.split("test")).tolist() == [2, 0]


def test_gtzan_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no GTZAN audio folder \(genres, genres_original"):
        gtzan(tmp_path)
    audio = _gtzan(tmp_path)
    (audio / "jazz/jazz.00010.au").unlink()
    with pytest.warns(MissingAudioWarning, match=r"genres: 1 of 6 listed recordings have no audio file"):
        assert [row["split"] for row in gtzan(tmp_path)] == ["train", "train", "train", "test", "test"]
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
    (root / "audio").mkdir()
    for stem, key in keys.items():
        (root / "annotations" / "key" / f"{stem}.LOFI.key").write_text(key + "\n")
        (root / "audio" / f"{stem}.LOFI.mp3").touch()


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


def test_giantsteps_key_reads_the_mtg_key_files_with_confidence_and_comment(tmp_path: Path) -> None:
    _giantsteps(tmp_path, {"1": "Eb major", "2": "A minor"})
    # the MTG key set's .key files: key, confidence (0-2), comment; only confident single keys are used
    _giantsteps(tmp_path / "mtg", {"10": "Bb minor\t2\t", "11": "C major\t1\tmaybe A minor",
                                   "12": "D minor/F major\t2\tmodal", "13": "e minor\t2\tdark"})
    rows = giantsteps_key(tmp_path, valid_fraction=0.0)
    assert [(Path(r["path"]).name, r["split"], r["labels"]) for r in rows] == [
        ("10.LOFI.mp3", "train", "A# minor"), ("13.LOFI.mp3", "train", "E minor"),
        ("1.LOFI.mp3", "test", "D# major"), ("2.LOFI.mp3", "test", "A minor")]


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
        for note in notes:
            tone(folder / "audio" / f"{note}.wav")


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


def test_cli_summarises_a_relative_root_and_writes_a_task_that_loads(tmp_path, capsys, monkeypatch):
    from melos.cli import main

    (tmp_path / "gtzan").mkdir()
    audio = _gtzan(tmp_path / "gtzan")
    (audio / "rock/rock.00042.au").unlink()
    monkeypatch.chdir(tmp_path)  # a relative root: the task must still point at the audio
    assert main(["data", "task", "gtzan", "gtzan", "--out", "tasks"]) == 0
    task = load_task(tmp_path / "tasks" / "gtzan.yaml")
    assert all(Path(item.path).is_file() for item in task.items) and len(task.split("train")) == 3
    out, err = capsys.readouterr()
    assert "train 3 · valid 1 · test 1" in out and "3 labels" in out and "1 missing audio" in out
    assert "rock.00042.wav" in err  # the missing file is named
    assert "warning: gtzan train: 3 tracks where the official layout has 443" in err  # an incomplete download
    assert "5 items ->" in out
    assert main(["data", "task", "gtzan", "no-such-folder", "--out", "tasks"]) == 2
    assert "no-such-folder: no such folder" in capsys.readouterr().err
