"""The efficient-encoder suite readers on tiny fake copies of each dataset's layout."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melos.evaluation.dataset_files import DatasetReader, MissingAudioWarning
from melos.evaluation.efficient_readers import (
    EFFICIENT_READERS,
    VOCALSET_REMOVED,
    emomusic,
    giantsteps_mtg_key,
    mtg_jamendo,
    vocalset,
)
from melos.evaluation.tasks import TASK_TYPES

MTG_HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- MTG-Jamendo ---------------------------------------------------------------------------------

def make_mtg(root: Path, subset: str = "autotagging_moodtheme") -> Path:
    lines = {
        "train": ["track_0000214\tartist_1\talbum_1\t14/214.mp3\t200.0\tmood/theme---happy\tmood/theme---sad"],
        "validation": ["track_0000315\tartist_2\talbum_2\t15/315.mp3\t180.5\tmood/theme---calm"],
        "test": ["track_0001416\tartist_3\talbum_3\t16/1416.mp3\t90.0\tmood/theme---dark"],
    }
    for split, rows in lines.items():
        write(root / "data/splits/split-0" / f"{subset}-{split}.tsv", MTG_HEADER + "\n".join(rows) + "\n")
    touch(root / "audio/14/214.mp3")
    touch(root / "audio/15/315.low.mp3")  # only the low-quality download
    touch(root / "audio/16/1416.mp3")
    return root


def test_mtg_jamendo_rows(tmp_path):
    rows = mtg_jamendo(make_mtg(tmp_path), "moodtheme")
    assert rows == [
        {"path": str(tmp_path / "audio/14/214.mp3"), "split": "train",
         "labels": ["mood/theme---happy", "mood/theme---sad"], "id": "track_0000214"},
        {"path": str(tmp_path / "audio/15/315.low.mp3"), "split": "valid", "labels": ["mood/theme---calm"],
         "id": "track_0000315"},
        {"path": str(tmp_path / "audio/16/1416.mp3"), "split": "test", "labels": ["mood/theme---dark"],
         "id": "track_0001416"},
    ]


def test_mtg_jamendo_audio_root_and_subset_files(tmp_path):
    root = make_mtg(tmp_path / "meta", "autotagging_top50tags")
    (root / "audio").rename(tmp_path / "mp3")
    rows = mtg_jamendo(root, "top50tags", audio=tmp_path / "mp3")
    assert rows[0]["path"] == str(tmp_path / "mp3/14/214.mp3")
    with pytest.raises(FileNotFoundError, match="autotagging_genre-train.tsv: file not found"):
        mtg_jamendo(root, "genre", audio=tmp_path / "mp3")
    with pytest.raises(ValueError, match="subset must be one of"):
        mtg_jamendo(root, "all")


def test_mtg_jamendo_in_marbles_layout(tmp_path):
    """MARBLE: the mtg-jamendo-dataset clone beside audio-low/, whose files are <PATH>.low.mp3."""
    clone = make_mtg(tmp_path / "mtg-jamendo-dataset", "autotagging_top50tags")
    for path in (clone / "audio").rglob("*.mp3"):
        low = tmp_path / "audio-low" / path.relative_to(clone / "audio")
        tone(low.with_name(low.name.removesuffix(".low.mp3").removesuffix(".mp3") + ".low.mp3"))
    shutil.rmtree(clone / "audio")
    rows = mtg_jamendo(tmp_path, "top50tags")
    assert [row["path"] for row in rows] == [str(tmp_path / f"audio-low/{p}.low.mp3")
                                             for p in ("14/214", "15/315", "16/1416")]
    assert mtg_jamendo(clone, "top50tags") == rows  # the clone itself, audio-low/ its sibling
    assert sf.info(rows[0]["path"]).format == "MP3"


def tone(path: Path, sample_rate: int = 16000, seconds: float = 0.1) -> Path:
    """A short tone in the format the suffix names (MP3 for MTG-Jamendo, WAV for VocalSet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sample_rate)
    return path


def test_mtg_jamendo_errors(tmp_path):
    root = make_mtg(tmp_path)
    source = root / "data/splits/split-0/autotagging_moodtheme-test.tsv"
    source.write_text("TRACK_ID\tPATH\n")
    with pytest.raises(ValueError, match=r"moodtheme-test.tsv:1: expected the header"):
        mtg_jamendo(root, "moodtheme")
    source.write_text(MTG_HEADER + "track_0001416\tartist_3\talbum_3\t16/1416.mp3\t90.0\n")
    with pytest.raises(ValueError, match=r"moodtheme-test.tsv:2: expected TRACK_ID.*at least one tag"):
        mtg_jamendo(root, "moodtheme")
    source.write_text(MTG_HEADER + "track_0000214\tartist_1\talbum_1\t14/214.mp3\t200.0\tmood/theme---sad\n")
    with pytest.raises(ValueError, match=r"moodtheme-test.tsv:2: track track_0000214 is already in the 'train'"):
        mtg_jamendo(root, "moodtheme")
    source.write_text(MTG_HEADER + "".join(f"track_{i}\ta\tb\t{i}/{i}.mp3\t1.0\tmood/theme---x\n" for i in range(7)))
    with pytest.warns(MissingAudioWarning, match=r"split-0: 7 of 9 listed recordings have no audio file and are "
                                                 r"left out") as caught:
        rows = mtg_jamendo(root, "moodtheme")
    message = str(caught[0].message)
    assert str(root / "audio/4/4.mp3") in message and str(root / "audio/5/5.mp3") not in message
    assert len(rows) == 2 and all(Path(row["path"]).is_file() for row in rows)


# --- VocalSet ------------------------------------------------------------------------------------

SINGERS = ("female1", "female2", "female3", "male1", "male3", "male11")


def make_vocalset(root: Path) -> Path:
    for singer in SINGERS:
        short = singer[0] + singer.lstrip("femal")
        for context, technique in (("arpeggios", "belt"), ("scales", "vibrato"), ("long_tones", "messa")):
            for vowel in "aeiou":
                touch(root / "FULL" / singer / context / technique / f"{short}_{context}_{technique}_{vowel}.wav")
    touch(root / "FULL/female1/scales/vibrato/._f1_scales_vibrato_a.wav")  # macOS resource fork
    return root


def test_vocalset_technique_split(tmp_path):
    rows = vocalset(make_vocalset(tmp_path), "technique")
    assert {row["labels"] for row in rows} == {"belt", "vibrato"}  # messa is not a task technique
    assert len(rows) == len(SINGERS) * 2 * 5
    by_split = {split: {row["path"].split("/FULL/")[1].split("/")[0] for row in rows if row["split"] == split}
                for split in ("train", "valid", "test")}
    assert by_split["test"] == {"female2", "male3"}
    assert not by_split["test"] & (by_split["train"] | by_split["valid"])
    n_pool = 4 * 2 * 5
    assert sum(row["split"] == "valid" for row in rows) == round(n_pool * 0.1)
    row = next(r for r in rows if r["id"] == "male11/arpeggios/belt/m11_arpeggios_belt_a.wav")
    assert row["path"] == str(tmp_path / "FULL" / row["id"]) and row["labels"] == "belt"


def test_vocalset_hold_out_is_deterministic(tmp_path):
    root = make_vocalset(tmp_path)
    first = vocalset(root, "technique")
    assert vocalset(root, "technique") == first
    assert vocalset(root, "technique", seed=1) != first
    assert vocalset(root / "FULL", "technique") == first


def test_vocalset_singer(tmp_path):
    rows = vocalset(make_vocalset(tmp_path), "singer")
    assert len(rows) == len(SINGERS) * 3 * 5  # every technique
    assert {row["labels"] for row in rows} == {"f1", "f2", "f3", "m1", "m3", "m11"}
    counts = {split: sum(row["split"] == split for row in rows) for split in ("train", "valid", "test")}
    assert counts == {"train": 63, "valid": 9, "test": 18}
    assert vocalset(tmp_path, "singer") == rows


def test_vocalset_short_singer_folders(tmp_path):
    touch(tmp_path / "FULL/f2/scales/belt/f2_scales_belt_a.wav")
    touch(tmp_path / "FULL/m4/scales/belt/m4_scales_belt_a.wav")
    rows = vocalset(tmp_path, "technique", valid_fraction=0.0)
    assert [(row["split"], row["labels"]) for row in rows] == [("test", "belt"), ("train", "belt")]


def test_vocalset_leaves_out_the_files_marble_deletes(tmp_path):
    root = make_vocalset(tmp_path)
    tone(root / "FULL/female2/scales/vibrato/f2_scales_vibrato_a(1).wav", 44100)  # the duplicate copy
    tone(root / "FULL/female3/long_tones/vibrato/caro_vibrato.wav", 44100)  # not in the paper's Table 2
    tone(root / "FULL/female3/long_tones/belt/caro_vibrato.wav", 44100)  # same name, another technique: kept
    for target in ("technique", "singer"):
        names = {Path(row["path"]).relative_to(root / "FULL").as_posix() for row in vocalset(root, target)}
        assert "female3/long_tones/belt/caro_vibrato.wav" in names
        assert not {n for n in names if n.endswith(("vibrato_a(1).wav", "vibrato/caro_vibrato.wav"))}
    assert len(VOCALSET_REMOVED) == 5


def test_vocalset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="FULL: no recordings"):
        vocalset(tmp_path)
    touch(tmp_path / "FULL/tenor1/scales/belt/x.wav")
    with pytest.raises(ValueError, match=r"x.wav: singer folder 'tenor1' is not female<N>/male<N>"):
        vocalset(tmp_path)
    with pytest.raises(ValueError, match="target must be"):
        vocalset(tmp_path, "vowel")


# --- GiantSteps-MTG key -> GiantSteps key --------------------------------------------------------

MTG_KEYS = """ID\tMANUAL KEY\tC
5061\tD# minor\t2
5881\tA major\t2
10981\t-\t0
16484\tA minor\t1
61578\tC minor / F# minor\t2
7217\tBb minor\t2
"""


def make_giantsteps(root: Path) -> Path:
    key_root, mtg = root / "giantsteps-key-dataset", root / "giantsteps-mtg-key-dataset"
    for id_, key in (("10089", "Eb minor"), ("3", "C major")):
        write(key_root / f"annotations/key/{id_}.LOFI.key", key)
        touch(key_root / f"audio/{id_}.LOFI.mp3")
    write(mtg / "annotations/annotations.txt", MTG_KEYS)
    for id_ in ("5061", "5881", "7217", "10981", "16484", "61578"):
        touch(mtg / f"audio/{id_}.LOFI.mp3")
    return root


def test_giantsteps_mtg_key_rows(tmp_path):
    rows = giantsteps_mtg_key(make_giantsteps(tmp_path), valid_fraction=0.0)
    mtg = tmp_path / "giantsteps-mtg-key-dataset/audio"
    gs = tmp_path / "giantsteps-key-dataset/audio"
    assert rows == [
        {"path": str(mtg / "5061.LOFI.mp3"), "split": "train", "labels": "D# minor", "id": "5061"},
        {"path": str(mtg / "5881.LOFI.mp3"), "split": "train", "labels": "A major", "id": "5881"},
        {"path": str(mtg / "7217.LOFI.mp3"), "split": "train", "labels": "A# minor", "id": "7217"},
        {"path": str(gs / "10089.LOFI.mp3"), "split": "test", "labels": "D# minor", "id": "10089"},
        {"path": str(gs / "3.LOFI.mp3"), "split": "test", "labels": "C major", "id": "3"},
    ]


def test_giantsteps_mtg_key_hold_out_and_roots(tmp_path):
    root = make_giantsteps(tmp_path)
    rows = giantsteps_mtg_key(root, valid_fraction=0.34, seed=3)
    assert sum(row["split"] == "valid" for row in rows) == 1
    assert giantsteps_mtg_key(root, valid_fraction=0.34, seed=3) == rows
    explicit = giantsteps_mtg_key(root / "giantsteps-key-dataset", root / "giantsteps-mtg-key-dataset",
                                  valid_fraction=0.34, seed=3)
    assert explicit == rows


def test_giantsteps_mtg_key_in_marbles_layout(tmp_path):
    """MARBLE's data/GS: the two repositories unpacked with their commit suffix, one shared audio/ folder."""
    root = make_giantsteps(tmp_path)
    expected = giantsteps_mtg_key(root, valid_fraction=0.0)
    (root / "audio").mkdir()
    for name, commit in (("giantsteps-key-dataset", "c8cb8aad"), ("giantsteps-mtg-key-dataset", "fd7b8c58")):
        for audio in (root / name / "audio").iterdir():
            audio.rename(root / "audio" / audio.name)
        (root / name / "audio").rmdir()
        (root / name).rename(root / f"{name}-{commit}")
    rows = giantsteps_mtg_key(root, valid_fraction=0.0)
    assert [(Path(r["path"]).name, r["split"], r["labels"]) for r in rows] == [
        (Path(r["path"]).name, r["split"], r["labels"]) for r in expected]
    assert all(Path(r["path"]).parent == root / "audio" for r in rows)


def test_giantsteps_mtg_key_errors(tmp_path):
    root = make_giantsteps(tmp_path)
    source = root / "giantsteps-mtg-key-dataset/annotations/annotations.txt"
    source.write_text(MTG_KEYS + "99\tH major\t2\n")
    with pytest.raises(ValueError, match=r"annotations.txt:8: unknown key 'H major'"):
        giantsteps_mtg_key(root)
    source.write_text(MTG_KEYS + "99\tA major\n")
    with pytest.raises(ValueError, match=r"annotations.txt:8: expected an integer ID"):
        giantsteps_mtg_key(root)
    source.write_text(MTG_KEYS + "5061\tA major\t2\n")
    with pytest.raises(ValueError, match=r"annotations.txt:8: duplicate ID 5061"):
        giantsteps_mtg_key(root)
    source.write_text("ID\tKEY\n")
    with pytest.raises(ValueError, match=r"annotations.txt:1: expected the header"):
        giantsteps_mtg_key(root)
    source.write_text(MTG_KEYS)
    (root / "giantsteps-mtg-key-dataset/audio/5881.LOFI.mp3").unlink()
    with pytest.warns(MissingAudioWarning, match=r"annotations.txt: 1 of 3 listed recordings have no audio file"):
        assert len(giantsteps_mtg_key(root)) == 4
    (root / "giantsteps-key-dataset/audio/3.LOFI.mp3").unlink()
    with pytest.warns(MissingAudioWarning, match=r"key: 1 of 2 listed recordings have no audio file"):
        assert len(giantsteps_mtg_key(root)) == 3
    touch(root / "giantsteps-key-dataset/audio/3.LOFI.mp3")
    source.unlink()
    with pytest.raises(FileNotFoundError, match="annotations.txt: file not found"):
        giantsteps_mtg_key(root)


# --- Emomusic ------------------------------------------------------------------------------------

def artist_split(artist: str) -> str:
    name = " ".join("".join(c for c in artist.lower() if c.isascii() and (c.isalpha() or c.isspace())).split())
    return "valid" if int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10 >= 8 else "train"


ARTISTS = [f"Artist {chr(65 + i)}" for i in range(12)]


def make_emomusic(root: Path, folder: str = "") -> Path:
    info = ["song_id,file_name,Artist,Song title,start of the segment (min.sec),end of the segment (min.sec),"
            "Genre,Mediaeval 2013 set"]
    static = ["song_id, mean_arousal, std_arousal, mean_valence, std_valence"]
    for i, artist in enumerate(ARTISTS, start=2):
        info.append(f"{i},{i}.mp3,{artist},Song {i},0.30,1.15,Rock,{'evaluation' if i % 4 == 0 else 'development'}")
        static.append(f"{i}, {i / 2}, 1.0, {i / 3}, 1.0")
        touch(root / "clips_45seconds" / f"{i}.mp3")
    write(root / folder / "songs_info.csv", "\n".join(info) + "\n")
    write(root / folder / "static_annotations.csv", "\n".join(static) + "\n")
    return root


def test_emomusic_rows(tmp_path):
    rows = emomusic(make_emomusic(tmp_path))
    assert [row["id"] for row in rows] == [str(i) for i in range(2, 14)]
    for i, (row, artist) in enumerate(zip(rows, ARTISTS), start=2):
        assert row["path"] == str(tmp_path / "clips_45seconds" / f"{i}.mp3")
        assert row["labels"] == [i / 2, i / 3]
        assert row["split"] == ("test" if i % 4 == 0 else artist_split(artist))
    assert {"train", "valid", "test"} <= {row["split"] for row in rows}
    assert emomusic(make_emomusic(tmp_path / "b", "annotations"))[0]["labels"] == [1.0, 2 / 3]


def test_emomusic_errors(tmp_path):
    root = make_emomusic(tmp_path)
    static = root / "static_annotations.csv"
    text = static.read_text()
    static.write_text(text.replace("3, 1.5,", "3, high,"))
    with pytest.raises(ValueError, match=r"static_annotations.csv:3: mean_arousal and mean_valence"):
        emomusic(root)
    static.write_text(text.replace("3, 1.5, 1.0,", "3, 1.5,"))
    with pytest.raises(ValueError, match=r"static_annotations.csv:3: expected 5 columns, got 4"):
        emomusic(root)
    static.write_text("\n".join(line for line in text.splitlines() if not line.startswith("5,")) + "\n")
    with pytest.raises(ValueError, match=r"songs_info.csv:5: song 5 has no static annotation"):
        emomusic(root)
    static.write_text(text)
    info = root / "songs_info.csv"
    info.write_text(info.read_text() + "2,2.mp3,X,Y,0.30,1.15,Rock,development\n")
    with pytest.raises(ValueError, match=r"songs_info.csv:14: song 2 is listed twice"):
        emomusic(root)
    info.write_text("".join(info.read_text().splitlines(keepends=True)[:-1]))
    static.write_text(text.replace("mean_valence", "valence"))
    with pytest.raises(ValueError, match=r"static_annotations.csv:1: header has no column\(s\) mean_valence"):
        emomusic(root)
    static.write_text(text)
    (root / "clips_45seconds/7.mp3").unlink()
    with pytest.warns(MissingAudioWarning, match=r"songs_info.csv: 1 of 12 listed recordings have no audio file"):
        assert len(emomusic(root)) == 11
    static.unlink()
    with pytest.raises(FileNotFoundError, match="static_annotations.csv: file not found"):
        emomusic(root)


# --- registry ------------------------------------------------------------------------------------

def test_registry():
    assert set(EFFICIENT_READERS) == {
        "mtg-jamendo-top50", "mtg-jamendo-genre", "mtg-jamendo-instrument", "mtg-jamendo-moodtheme",
        "vocalset-technique", "vocalset-singer", "giantsteps-mtg-key", "emomusic"}
    assert all(isinstance(r, DatasetReader) and r.task_type in TASK_TYPES for r in EFFICIENT_READERS.values())
    assert EFFICIENT_READERS["mtg-jamendo-top50"].options == {"top_k": 50}
    assert EFFICIENT_READERS["emomusic"].task_type == "regression"
    assert EFFICIENT_READERS["giantsteps-mtg-key"].task_type == "key"


def test_registry_readers_run(tmp_path):
    make_mtg(tmp_path / "mtg")
    assert EFFICIENT_READERS["mtg-jamendo-moodtheme"].read(tmp_path / "mtg")
    make_vocalset(tmp_path / "vs")
    assert EFFICIENT_READERS["vocalset-singer"].read(tmp_path / "vs")
    assert EFFICIENT_READERS["giantsteps-mtg-key"].read(make_giantsteps(tmp_path / "gs"))
    assert EFFICIENT_READERS["emomusic"].read(make_emomusic(tmp_path / "emo"))


@pytest.mark.parametrize("name, make", [("vocalset-technique", make_vocalset), ("emomusic", make_emomusic),
                                        ("mtg-jamendo-moodtheme", make_mtg)])
def test_rows_load_as_tasks(tmp_path, name, make):
    from melos.evaluation.datasets import write_task
    from melos.evaluation.tasks import load_task

    reader = EFFICIENT_READERS[name]
    rows = reader.read(make(tmp_path / "data"))
    task = load_task(write_task(rows, tmp_path / "tasks", name, reader.task_type, **reader.options))
    assert len(task.items) == len(rows) and task.type == reader.task_type
