"""CultureMERT readers on tiny fake copies of each dataset's layout (audio files are empty)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melos.audio import load
from melos.evaluation.culturemert_readers import (CULTUREMERT_READERS, SARAGA_CARNATIC_SPLIT, SARAGA_HINDUSTANI_SPLIT,
                                                  dunya_carnatic, dunya_hindustani, fma_medium,
                                                  lyra, makam, published_split, random_split, saraga_carnatic,
                                                  saraga_hindustani)
from melos.evaluation.dataset_files import MissingAudioWarning
from melos.evaluation.datasets import write_task
from melos.evaluation.tasks import load_task


def tone(path: Path, sample_rate: int = 16000, seconds: float = 0.2) -> Path:
    """A short tone in the format the suffix names (MP3 here, as Dunya serves it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sample_rate)
    return path


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


# --- split convention ---------------------------------------------------------------------------

def test_random_split_is_deterministic_by_id_and_uses_fractions():
    ids = [f"id{i:02d}" for i in range(20)]
    split = random_split(ids, seed=3)
    assert split == random_split(list(reversed(ids)), seed=3)
    assert sorted(split) == ids
    counts = {s: list(split.values()).count(s) for s in ("train", "valid", "test")}
    assert counts == {"train": 14, "valid": 2, "test": 4}
    assert random_split(ids, seed=4) != split


def test_random_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        random_split(["a"], fractions=(0.5, 0.5, 0.5))


def _write_splits(folder: Path, **lists: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_text("".join(f"{i}\n" for i in lists.get(split, [])))


def test_published_split_reads_id_lists_and_leaves_out_unlisted_ids(tmp_path):
    _write_splits(tmp_path, train=["a", "b"], valid=["c"], test=["d"])
    assert published_split(tmp_path, ["a", "b", "c", "d", "e"]) == {"a": "train", "b": "train", "c": "valid",
                                                                   "d": "test"}


def test_published_split_errors_name_file_and_line(tmp_path):
    _write_splits(tmp_path, train=["a"], valid=["a", "zz"])
    with pytest.raises(ValueError, match=r"valid\.txt:1: id 'a' is already in the 'train' split"):
        published_split(tmp_path, ["a", "zz"])
    _write_splits(tmp_path, train=["a"], test=["", "zz"])
    with pytest.raises(ValueError, match=r"test\.txt:2: unknown id 'zz'"):
        published_split(tmp_path, ["a"])
    (tmp_path / "valid.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"valid\.txt: file not found"):
        published_split(tmp_path, ["a"])


# --- FMA-medium ---------------------------------------------------------------------------------

# tracks.csv as fma_metadata.zip ships it: two header rows (column group, column), then the index name
_FMA_HEADER = (
    ",album,set,set,track,track,track,track\n"
    ",title,split,subset,genre_top,genres,genres_all,title\n"
    "track_id,,,,,,,\n"
)
_FMA_GENRES = ("genre_id,#tracks,parent,title,top_level\n1,8693,38,Avant-Garde,38\n12,32923,0,Rock,12\n"
               "17,12706,0,Folk,17\n21,8389,0,Hip-Hop,21\n25,9261,12,Punk,12\n38,38154,0,Experimental,38\n")


def _fma(root: Path, records: list[str], audio: bool = True) -> None:
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    (meta / "tracks.csv").write_text(_FMA_HEADER + "".join(r + "\n" for r in records))
    (meta / "genres.csv").write_text(_FMA_GENRES)
    if audio:
        for record in records:
            track = int(record.split(",")[0])
            _touch(root / "fma_medium" / f"{track // 1000:03d}" / f"{track:06d}.mp3")


_FMA_RECORDS = [
    '2,Album,training,small,Hip-Hop,[21],[21],"Food, with\na newline"',
    '1234,A,validation,medium,Rock,[25],"[25, 12]",T',
    '5,A,test,medium,,"[17, 1]","[17, 1, 38]",T',  # no genre_top: genres of two top-level genres
    "7,A,training,large,Pop,[10],[10],T",
]


def test_fma_medium_reads_genres_all_with_official_split(tmp_path):
    _fma(tmp_path, _FMA_RECORDS)
    rows = fma_medium(tmp_path)
    assert rows == [
        {"path": str(tmp_path / "fma_medium/000/000002.mp3"), "split": "train", "labels": ["Hip-Hop"], "id": "2"},
        {"path": str(tmp_path / "fma_medium/001/001234.mp3"), "split": "valid", "labels": ["Punk", "Rock"],
         "id": "1234"},
        {"path": str(tmp_path / "fma_medium/000/000005.mp3"), "split": "test",
         "labels": ["Avant-Garde", "Experimental", "Folk"], "id": "5"},
    ]


def test_fma_medium_follows_ccmls_split(tmp_path):
    _fma(tmp_path, _FMA_RECORDS)
    (tmp_path / "split").mkdir()
    np.save(tmp_path / "split/train.npy", np.array(["000005", "001234"]))  # ccml's ids, zero-padded
    np.save(tmp_path / "split/valid.npy", np.array([], dtype=str))
    np.save(tmp_path / "split/test.npy", np.array([2]))
    assert {r["id"]: r["split"] for r in fma_medium(tmp_path)} == {"1234": "train", "5": "train", "2": "test"}
    np.save(tmp_path / "split/test.npy", np.array([2, 7]))  # 7 is in FMA-large only
    with pytest.raises(ValueError, match=r"split: 1 listed tracks are not in FMA-medium's tracks.csv, e.g. 7"):
        fma_medium(tmp_path)
    np.save(tmp_path / "split/test.npy", np.array([2, None], dtype=object))
    with pytest.raises(ValueError, match=r"test\.npy: holds pickled objects"):
        fma_medium(tmp_path)


def test_fma_medium_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"genres\.csv: file not found"):
        fma_medium(tmp_path)
    _fma(tmp_path / "a", ['2,A,training,small,Rock,[12],[12],"two\nlines"', "3,A,train,medium,Rock,[12],[12],T"],
         audio=False)
    with pytest.raises(ValueError, match=r"tracks\.csv:6: split must be training, validation or test, got 'train'"):
        fma_medium(tmp_path / "a")
    _fma(tmp_path / "b", ["x,A,training,small,Rock,[12],[12],T"], audio=False)
    with pytest.raises(ValueError, match=r"tracks\.csv:4: track id must be an integer"):
        fma_medium(tmp_path / "b")
    _fma(tmp_path / "c", ["2,A,training,small,,[],[],T"], audio=False)
    with pytest.raises(ValueError, match=r"tracks\.csv:4: track 2 has no genres_all"):
        fma_medium(tmp_path / "c")
    _fma(tmp_path / "e", ["2,A,training,small,Rock,[12],[99],T"], audio=False)
    with pytest.raises(ValueError, match=r"tracks\.csv:4: genre id 99 of track 2 is not in genres\.csv"):
        fma_medium(tmp_path / "e")
    _fma(tmp_path / "f", ["2,A,training,small,Rock,[12],Rock,T"], audio=False)
    with pytest.raises(ValueError, match=r"tracks\.csv:4: genres_all must be a list of genre ids, got 'Rock'"):
        fma_medium(tmp_path / "f")
    (tmp_path / "d/fma_metadata").mkdir(parents=True)
    (tmp_path / "d/fma_metadata/genres.csv").write_text(_FMA_GENRES)
    (tmp_path / "d/fma_metadata/tracks.csv").write_text(",set\n,subset\n")
    with pytest.raises(ValueError, match=r"tracks\.csv:1: header has no column\(s\) set/split, track/genres_all"):
        fma_medium(tmp_path / "d")


def test_fma_medium_lists_missing_audio_once(tmp_path):
    _fma(tmp_path, [f"{i},A,training,medium,Rock,[12],[12],T" for i in range(1, 9)], audio=False)
    _touch(tmp_path / "fma_medium/000/000001.mp3")
    with pytest.warns(MissingAudioWarning) as caught:
        rows = fma_medium(tmp_path)
    assert [row["path"] for row in rows] == [str(tmp_path / "fma_medium/000/000001.mp3")]
    message = str(caught[0].message)
    assert message.startswith(f"{tmp_path / 'fma_metadata/tracks.csv'}: 7 of 8 listed recordings have no audio")
    assert message.count("\n") == 5 and "000002.mp3" in message and "000008.mp3" not in message


# --- Lyra ---------------------------------------------------------------------------------------

_LYRA_HEADER = "id\tinstruments\tgenres\tplace\tcoordinates\tis-danced\tyoutube-id\tstart-ts\tend-ts\n"


def _lyra(root: Path, n: int = 10, audio: bool = True) -> list[str]:
    (root / "data").mkdir(parents=True)
    ids = [f"song-{i}" for i in range(n)]
    lines = [f"{i}\tVoice|Violin\tTraditional|Nisiotiko\t{'None' if k % 2 else 'Aegean-sea|Chios'}\tNone\t0\tx\t1\t2\n"
             for k, i in enumerate(ids)]
    (root / "data" / "raw.tsv").write_text(_LYRA_HEADER + "".join(lines))
    if audio:
        for i in ids:
            _touch(root / "audio" / f"{i}.mp3")
    return ids


def test_lyra_tags_and_seeded_split(tmp_path):
    ids = _lyra(tmp_path)
    rows = lyra(tmp_path)
    assert [r["id"] for r in rows] == sorted(ids)
    first = rows[0]
    assert first["path"] == str(tmp_path / "audio/song-0.mp3") and first["split_seed"] == 0
    assert first["labels"] == ["genres--Nisiotiko", "genres--Traditional", "instruments--Violin",
                               "instruments--Voice", "place--Aegean-sea", "place--Chios"]
    assert "place--None" not in rows[1]["labels"] and len(rows[1]["labels"]) == 4
    expected = random_split(ids)
    assert {r["id"]: r["split"] for r in rows} == expected
    assert lyra(tmp_path) == rows


def test_lyra_published_split_replaces_random_one(tmp_path):
    _lyra(tmp_path, n=4)
    _write_splits(tmp_path / "splits", train=["song-0", "song-1"], valid=["song-2"], test=["song-3"])
    rows = lyra(tmp_path)
    assert [(r["id"], r["split"]) for r in rows] == [("song-0", "train"), ("song-1", "train"),
                                                     ("song-2", "valid"), ("song-3", "test")]
    assert "split_seed" not in rows[0]
    (tmp_path / "splits/test.txt").write_text("song-3\nsong-9\n")
    with pytest.raises(ValueError, match=r"splits/test\.txt:2: unknown id 'song-9'"):
        lyra(tmp_path)


def test_lyra_reads_its_own_training_and_test_split(tmp_path):
    ids = _lyra(tmp_path, n=10)
    raw = (tmp_path / "data/raw.tsv").read_text().splitlines(keepends=True)
    (tmp_path / "data/split").mkdir()
    (tmp_path / "data/split/training.tsv").write_text(raw[0] + "".join(raw[1:10]))  # as distributed: raw.tsv's rows
    (tmp_path / "data/split/test.tsv").write_text(raw[0] + "".join(raw[10:]))
    rows = lyra(tmp_path)
    splits = {r["id"]: r["split"] for r in rows}
    assert splits[ids[9]] == "test" and sum(s == "test" for s in splits.values()) == 1
    assert sum(s == "valid" for s in splits.values()) == 1 and sum(s == "train" for s in splits.values()) == 8
    assert lyra(tmp_path) == rows  # the held-out valid part is seeded
    (tmp_path / "data/split/test.tsv").write_text(raw[0] + raw[10] + raw[1])
    with pytest.raises(ValueError, match=r"test\.tsv:3: id 'song-0' is already in the 'train' split"):
        lyra(tmp_path)


def test_lyra_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data/raw\.tsv: file not found"):
        lyra(tmp_path)
    _lyra(tmp_path / "a", n=2)
    raw = tmp_path / "a/data/raw.tsv"
    raw.write_text(raw.read_text() + "song-0\tVoice\tLaiko\tNone\tNone\t0\tx\t1\t2\n")
    with pytest.raises(ValueError, match=r"raw\.tsv:4: duplicate id 'song-0'"):
        lyra(tmp_path / "a")
    raw.write_text(_LYRA_HEADER + "song-0\tVoice\n")
    with pytest.raises(ValueError, match=r"raw\.tsv:2: expected 9 columns, got 2"):
        lyra(tmp_path / "a")
    raw.write_text("id\tgenres\n")
    with pytest.raises(ValueError, match=r"raw\.tsv:1: expected a tab-separated header"):
        lyra(tmp_path / "a")
    _lyra(tmp_path / "b", n=3, audio=False)
    with pytest.raises(ValueError, match=r"raw\.tsv: 3 of 3 listed recordings have no audio file"):
        lyra(tmp_path / "b")


# --- Saraga -------------------------------------------------------------------------------------

def _carnatic_meta(mbid: str, raga: str) -> dict:
    return {
        "mbid": mbid, "title": "T",
        "artists": [{"artist": {"name": "A"}, "instrument": {"name": "Voice"}, "lead": True},
                    {"artist": {"name": "B"}, "instrument": {"name": "Mridangam"}, "lead": False}],
        "raaga": [{"uuid": "u", "name": "Śrīranjani", "common_name": raga}],
        "taala": [{"uuid": "u", "name": "Ādi", "common_name": "adi"}],
        "form": [{"name": "Kriti"}],
    }


def _saraga(root: Path, collection: str, metas: dict[str, dict], audio: str | None = ".mp3.mp3") -> None:
    for title, meta in metas.items():
        folder = root / collection / "Some concert" / title
        folder.mkdir(parents=True)
        (folder / f"{title}.json").write_text(json.dumps(meta))
        (folder / f"{title}.sections-manual-p.txt").write_text("")
        if audio:
            _touch(folder / f"{title}{audio}")


def test_saraga_carnatic_tags_paths_and_split(tmp_path):
    _saraga(tmp_path, "saraga1.5_carnatic", {f"Song {i}": _carnatic_meta(f"m{i}", f"raga{i % 2}") for i in range(6)})
    rows = saraga_carnatic(tmp_path)
    assert [r["id"] for r in rows] == [f"m{i}" for i in range(6)]
    assert rows[0]["path"] == str(tmp_path / "saraga1.5_carnatic/Some concert/Song 0/Song 0.mp3.mp3")
    assert rows[0]["labels"] == ["form--Kriti", "instrument--Mridangam", "instrument--Voice", "raga--raga0",
                                 "tala--adi"]
    assert {r["id"]: r["split"] for r in rows} == random_split([f"m{i}" for i in range(6)])
    assert saraga_carnatic(tmp_path / "saraga1.5_carnatic") == rows


def test_saraga_reads_recordings_named_artist_dash_title(tmp_path):
    _saraga(tmp_path, "saraga1.5_carnatic", {"Song 0": _carnatic_meta("m0", "raga0")})
    folder = tmp_path / "saraga1.5_carnatic/Some concert/Song 1"  # as 81 of the 249 in the official index
    folder.mkdir()
    (folder / "Ranjani - Song 1.json").write_text(json.dumps(_carnatic_meta("m1", "raga1")))
    _touch(folder / "Ranjani - Song 1.mp3.mp3")
    rows = saraga_carnatic(tmp_path)
    assert [(r["id"], Path(r["path"]).name) for r in rows] == [("m0", "Song 0.mp3.mp3"), ("m1", "Ranjani - Song 1.mp3.mp3")]
    (folder / "other.json").write_text("{}")
    with pytest.raises(ValueError, match=r"Song 1: 2 JSON files and none is named Song 1\.json"):
        saraga_carnatic(tmp_path)


def test_saraga_hindustani_fields_and_plain_mp3(tmp_path):
    meta = {
        "mbid": "h1",
        "artists": [{"artist": {"name": "A"}, "instrument": {"name": "Tabla"}}, {"artist": {"name": "C"}}],
        "raags": [{"uuid": "u", "common_name": "Bilaskhani todi", "name": "Bilāsakhānī tōḍī"}],
        "taals": [{"common_name": "Teentaal"}, {"common_name": "Teentaal"}],
        "layas": [{"common_name": "Vilambit"}],
        "forms": [{"common_name": "Khayal", "name": "Khyāl"}],
    }
    _saraga(tmp_path, "saraga1.5_hindustani", {"Bairagi": meta}, audio=".mp3")
    _write_splits(tmp_path / "splits", test=["h1"])
    [row] = saraga_hindustani(tmp_path)
    assert row["path"].endswith("Bairagi/Bairagi.mp3") and row["split"] == "test"
    assert row["labels"] == ["form--Khayal", "instrument--Tabla", "raga--Bilaskhani todi", "tala--Teentaal"]


def test_saraga_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no recording metadata"):
        saraga_carnatic(tmp_path)
    _saraga(tmp_path / "a", "saraga1.5_carnatic", {"S": {"title": "no id"}})
    with pytest.raises(ValueError, match=r"S\.json: no recording 'mbid'"):
        saraga_carnatic(tmp_path / "a")
    _saraga(tmp_path / "b", "saraga1.5_carnatic", {"S": {"mbid": "x", "raaga": "kalyani"}})
    with pytest.raises(ValueError, match=r"S\.json: 'raaga' must be a list of objects"):
        saraga_carnatic(tmp_path / "b")
    _saraga(tmp_path / "c", "saraga1.5_carnatic", {"S": {"mbid": "x"}, "T": {"mbid": "x"}})
    with pytest.raises(ValueError, match=r"T\.json: mbid x is also the id of .*S\.mp3\.mp3"):
        saraga_carnatic(tmp_path / "c")
    _saraga(tmp_path / "d", "saraga1.5_carnatic", {"S": {}})
    (tmp_path / "d/saraga1.5_carnatic/Some concert/S/S.json").write_text('{\n"mbid": }')
    with pytest.raises(ValueError, match=r"S\.json:2: invalid JSON"):
        saraga_carnatic(tmp_path / "d")
    _saraga(tmp_path / "e", "saraga1.5_carnatic", {"S": _carnatic_meta("m", "r")}, audio=None)
    with pytest.raises(ValueError, match=r"saraga1\.5_carnatic: 1 of 1 listed recordings have no audio file .*"
                                         r"e\.g\.:\n.*S/S\.mp3\.mp3"):
        saraga_carnatic(tmp_path / "e")


def test_saraga_counts_follow_from_the_collection_size_and_a_short_download_is_reported(tmp_path, capsys):
    from melos.cli import main

    for n, expected in ((249, SARAGA_CARNATIC_SPLIT), (108, SARAGA_HINDUSTANI_SPLIT)):
        assert dict(Counter(random_split([f"r{i}" for i in range(n)]).values())) == expected
    _saraga(tmp_path / "c", "saraga1.5_carnatic", {f"m{i}": _carnatic_meta(f"m{i}", "Kalyani") for i in range(10)})
    assert main(["data", "task", "saraga-carnatic", str(tmp_path / "c"), "--out", str(tmp_path / "t")]) == 0
    err = capsys.readouterr().err
    assert "warning: saraga-carnatic train: 7 tracks where the official layout has 174" in err
    assert "warning: saraga-carnatic test: 2 tracks where the official layout has 50" in err


# --- Turkish makam ------------------------------------------------------------------------------

def _makam(root: Path, metas: dict[str, dict], audio: bool = True) -> None:
    (root / "metadata").mkdir(parents=True)
    for mbid, meta in metas.items():
        (root / "metadata" / f"{mbid}.json").write_text(json.dumps(meta))
        if audio:
            _touch(root / "audio" / f"{mbid}.mp3")


def test_makam_tags_from_dunya_records(tmp_path):
    meta = {"mbid": "a1", "makamlist": [{"name": "Hicaz", "uuid": "u"}], "usullist": [{"name": "Aksak"}],
            "performers": [{"name": "P", "instrument": {"name": "Ney"}}, {"name": "Q", "instrument": None}]}
    _makam(tmp_path, {f"a{i}": meta for i in range(5)})
    rows = makam(tmp_path)
    assert rows[0] == {"path": str(tmp_path / "audio/a0.mp3"), "split": rows[0]["split"],
                       "labels": ["instrument--Ney", "makam--Hicaz", "usul--Aksak"], "id": "a0", "split_seed": 0}
    assert {r["id"]: r["split"] for r in rows} == random_split([f"a{i}" for i in range(5)])


def test_makam_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metadata: no recording metadata"):
        makam(tmp_path)
    _makam(tmp_path / "a", {"a1": {"makamlist": [{"uuid": "u"}]}})
    with pytest.raises(ValueError, match=r"a1\.json: an entry of 'makamlist' has no common_name or name"):
        makam(tmp_path / "a")
    _makam(tmp_path / "b", {"a1": {}, "a2": {}}, audio=False)
    with pytest.raises(ValueError, match=r"metadata: 2 of 2 listed recordings have no audio file"):
        makam(tmp_path / "b")


_MBIDS = ["0a6a5a2e-0d5b-4f7e-9a3c-1b1c3c6d9e01", "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a02",
          "2b3c4d5e-6f70-4819-9a2b-3c4d5e6f7a03", "3c4d5e6f-7081-4920-8b3c-4d5e6f708b04"]


def _ccml(root: Path, tags: dict[str, list[str] | None] | None = None, audio: bool = True) -> Path:
    """ccml's data/<dataset>/ folder: audios/<mbid>.mp3 and split/{train,valid,test}.npy of mbids
    (unicode arrays, as np.save writes a list of str), plus metadata.json converted from metadata.npy."""
    (root / "split").mkdir(parents=True)
    for split, ids in (("train", _MBIDS[:2]), ("valid", _MBIDS[2:3]), ("test", _MBIDS[3:])):
        np.save(root / "split" / f"{split}.npy", np.array(ids))
    if tags is not None:
        (root / "split" / "metadata.json").write_text(json.dumps(tags))
    if audio:
        for mbid in _MBIDS:
            tone(root / "audios" / f"{mbid}.mp3")
    return root


def test_makam_in_ccmls_layout_reads_its_split_and_converted_metadata(tmp_path):
    tags = {m: ["makam--Hicaz", "usul--Aksak", "instrument--Ney", "makam--Hicaz"] for m in _MBIDS}
    tags[_MBIDS[3]] = None  # ccml stores None where the Dunya request failed
    _ccml(tmp_path, tags)
    rows = makam(tmp_path)
    assert [(r["id"], r["split"]) for r in rows] == list(zip(_MBIDS, ("train", "train", "valid", "test")))
    assert rows[0] == {"path": str(tmp_path / "audios" / f"{_MBIDS[0]}.mp3"), "split": "train",
                       "labels": ["instrument--Ney", "makam--Hicaz", "usul--Aksak"], "id": _MBIDS[0]}
    assert rows[3]["labels"] == []
    assert load(rows[0]["path"], 16000).shape[-1] > 0  # the MP3 fixture decodes


def test_makam_in_ccmls_layout_reads_dunya_records_and_refuses_the_pickle(tmp_path):
    _ccml(tmp_path)
    (tmp_path / "split/metadata.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(FileNotFoundError, match=r"metadata\.npy: a pickle, which melos does not load; "
                                                r"convert it once.*metadata\.json"):
        makam(tmp_path)
    record = {"makamlist": [{"name": "Rast"}], "usullist": [], "performers": [{"instrument": {"name": "Ud"}}]}
    for mbid in _MBIDS[:3]:
        (tmp_path / "metadata").mkdir(exist_ok=True)
        (tmp_path / "metadata" / f"{mbid}.json").write_text(json.dumps(record))
    with pytest.raises(FileNotFoundError, match=rf"1 ids of the split have no '<id>.json' record.*{_MBIDS[3]}"):
        makam(tmp_path)
    (tmp_path / "metadata" / f"{_MBIDS[3]}.json").write_text(json.dumps(record))
    assert {tuple(r["labels"]) for r in makam(tmp_path)} == {("instrument--Ud", "makam--Rast")}


def test_makam_in_ccmls_layout_errors(tmp_path):
    _ccml(tmp_path / "a", {m: ["makam--Hicaz"] for m in _MBIDS[:3]})
    with pytest.raises(ValueError, match=rf"metadata\.json: 1 ids of the split have no tags, e.g. '{_MBIDS[3]}'"):
        makam(tmp_path / "a")
    _ccml(tmp_path / "b", {m: ["makam--Hicaz"] for m in _MBIDS})
    np.save(tmp_path / "b/split/test.npy", np.array([_MBIDS[0]]))
    with pytest.raises(ValueError, match=r"test\.npy: id '0a6a.*' is already in the 'train' split"):
        makam(tmp_path / "b")
    _ccml(tmp_path / "c", {m: ["makam--Hicaz"] for m in _MBIDS}, audio=False)
    tone(tmp_path / "c/audios" / f"{_MBIDS[0]}.mp3")
    with pytest.warns(MissingAudioWarning, match=r"metadata\.json: 3 of 4 listed recordings have no audio"):
        assert len(makam(tmp_path / "c")) == 1


def test_dunya_carnatic_and_hindustani_read_the_ccml_layout(tmp_path):
    carnatic = {"raaga": [{"common_name": "Kalyani"}], "taala": [{"common_name": "Adi"}],
                "form": [{"name": "Kriti"}], "artists": [{"instrument": {"name": "Violin"}}]}
    _ccml(tmp_path / "c")
    (tmp_path / "c/metadata").mkdir()
    for mbid in _MBIDS:
        (tmp_path / "c/metadata" / f"{mbid}.json").write_text(json.dumps(carnatic))
    assert dunya_carnatic(tmp_path / "c")[0]["labels"] == ["form--Kriti", "instrument--Violin", "raga--Kalyani",
                                                          "tala--Adi"]
    _ccml(tmp_path / "h", {m: ["raga--Yaman", "form--Khayal"] for m in _MBIDS})
    rows = dunya_hindustani(tmp_path / "h")
    assert [r["split"] for r in rows] == ["train", "train", "valid", "test"]
    assert rows[0]["labels"] == ["form--Khayal", "raga--Yaman"]
    with pytest.raises(FileNotFoundError, match=r"split: no train\.npy"):
        dunya_carnatic(tmp_path / "none")


# --- registry -----------------------------------------------------------------------------------

def test_registry_options_and_written_task_loads(tmp_path):
    assert {name: r.options for name, r in CULTUREMERT_READERS.items()} == {
        "fma-medium": {"top_k": 20}, "lyra": {"top_k": 30},
        "saraga-carnatic": {"top_k": 20, "max_duration": 330.0},
        "saraga-hindustani": {"top_k": 20, "max_duration": 780.0},
        "makam": {"top_k": 30, "max_duration": 150.0},
        "dunya-carnatic": {"top_k": 20, "max_duration": 330.0},
        "dunya-hindustani": {"top_k": 20, "max_duration": 780.0},
    }
    assert all(r.task_type == "multilabel" for r in CULTUREMERT_READERS.values())
    _lyra(tmp_path / "lyra", n=20)
    reader = CULTUREMERT_READERS["lyra"]
    task = load_task(write_task(reader.read(tmp_path / "lyra"), tmp_path / "tasks", "lyra", reader.task_type,
                                **reader.options))
    assert task.top_k == 30 and len(task.items) == 20
    assert "genres--Traditional" in task.vocabulary
