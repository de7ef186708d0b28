"""Readers for the efficient-encoder paper's downstream suite: MTG-Jamendo (four tag subsets),
VocalSet (technique, singer), GiantSteps-MTG key -> GiantSteps key, and Emomusic.

Like the readers in `datasets`, each takes the dataset root, reads only metadata (audio files are
checked to exist, never opened) and returns manifest rows ``{"path", "split", "labels", "id"}``.
Splits follow MARBLE (github.com/a43992899/MARBLE-Benchmark, itself from jukemir) where it
publishes one; where it draws one at random, a seeded hold-out is used instead (see each reader).
`datasets` is imported inside the GiantSteps functions, so that it can register these readers.
"""

from __future__ import annotations

import csv
import hashlib
import re
from functools import partial
from pathlib import Path

from .culturemert_readers import SPLIT_SEED, random_split
from .dataset_files import DatasetReader, check_audio, giantsteps_items, hold_out, normalise_key, read_lines

__all__ = ["EFFICIENT_READERS", "MTG_SUBSETS", "VOCALSET_REMOVED", "VOCALSET_TECHNIQUES",
           "VOCALSET_TEST_SINGERS", "emomusic",
           "giantsteps_mtg_key", "mtg_jamendo", "vocalset"]

_MTG_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
_MTG_HEADER = ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]
MTG_CLONE = "mtg-jamendo-dataset"  # the metadata repository's folder in MARBLE's layout
MTG_SUBSETS = {"top50tags": "autotagging_top50tags", "genre": "autotagging_genre",
               "instrument": "autotagging_instrument", "moodtheme": "autotagging_moodtheme"}
# MARBLE's VocalSet preprocess.py: the ten techniques of the technique task and its test singers
VOCALSET_TECHNIQUES = ("belt", "breathy", "inhaled", "lip_trill", "spoken", "straight", "trill", "trillo",
                       "vibrato", "vocal_fry")
VOCALSET_TEST_SINGERS = ("f2", "f8", "m3", "m5", "m10")
# deleted by MARBLE's VocalSet preprocess.py: a duplicate and four recordings not in the paper's Table 2
VOCALSET_REMOVED = frozenset({"vibrato/f2_scales_vibrato_a(1).wav", "vibrato/caro_vibrato.wav",
                              "vibrato/dona_vibrato.wav", "vibrato/row_vibrato.wav", "vibrato/slow_vibrato_arps.wav"})
_SINGER_FOLDER = re.compile(r"^(f|m)(?:emale|ale)?(\d+)$")
GIANTSTEPS_KEY_TRACKS = 604  # the GiantSteps key dataset, the test set
_GIANTSTEPS_FOLDERS = ("giantsteps-key-dataset", "giantsteps-mtg-key-dataset")


def mtg_jamendo(root: Path, subset: str = "top50tags", split: int = 0, audio: Path | None = None) -> list[dict]:
    """MTG-Jamendo auto-tagging with the official ``split-<split>`` of mtg-jamendo-dataset.

    Reads ``data/splits/split-<split>/<file>-{train,validation,test}.tsv`` where <file> is
    ``autotagging_<subset>`` (tab-separated TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION, then one
    tag per column, e.g. ``genre---rock``). `root` is the mtg-jamendo-dataset clone, or (MARBLE's
    layout) the folder holding it as ``mtg-jamendo-dataset/`` beside the audio. Audio is
    ``<audio>/<PATH>``, `audio` by default the first of ``root/audio``, ``root/audio-low`` and the
    clone's sibling ``audio-low`` that exists; where only the low-quality download (MARBLE's
    default) exists, ``<PATH with .low.mp3>`` is used.
    """
    if subset not in MTG_SUBSETS:
        raise ValueError(f"subset must be one of {', '.join(MTG_SUBSETS)}, got {subset!r}")
    root = Path(root)
    clone = root / MTG_CLONE if not (root / "data" / "splits").is_dir() and (root / MTG_CLONE).is_dir() else root
    audio_root = Path(audio) if audio is not None else _mtg_audio_root(root, clone)
    folder = clone / "data" / "splits" / f"split-{split}"
    rows: list[dict] = []
    seen: dict[str, str] = {}
    for ours, theirs in _MTG_SPLITS.items():
        source = folder / f"{MTG_SUBSETS[subset]}-{theirs}.tsv"
        for n, track, path, tags in _mtg_records(source):
            if track in seen:
                raise ValueError(f"{source}:{n}: track {track} is already in the {seen[track]!r} split")
            seen[track] = ours
            rows.append({"path": str(_mtg_audio(audio_root, path)), "split": ours, "labels": tags, "id": track})
    return check_audio(rows, folder)


def _mtg_audio_root(root: Path, clone: Path) -> Path:
    """The first existing of root/audio, root/audio-low and the clone's sibling audio-low (else root/audio)."""
    candidates = (root / "audio", root / "audio-low", clone.parent / "audio-low")
    return next((p for p in candidates if p.is_dir()), candidates[0])


def _mtg_records(source: Path) -> list[tuple[int, str, str, list[str]]]:
    """(line, track id, relative audio path, tags) of one split file, checking its header and columns."""
    lines = read_lines(source)
    if not lines or lines[0][1].split("\t") != _MTG_HEADER:
        raise ValueError(f"{source}:1: expected the header {' '.join(_MTG_HEADER)} (tab-separated)")
    records = []
    for n, line in lines[1:]:
        fields = [f.strip() for f in line.split("\t")]
        tags = sorted({t for t in fields[5:] if t})
        if len(fields) < 6 or not fields[0] or not fields[3] or not tags:
            raise ValueError(f"{source}:{n}: expected TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION and "
                             f"at least one tag, got {line!r}")
        records.append((n, fields[0], fields[3], tags))
    return records


def _mtg_audio(audio_root: Path, path: str) -> Path:
    """``audio_root/path``, or its ``.low.mp3`` variant when only that one is on disk."""
    full = audio_root / path
    low = full.with_name(full.name.removesuffix(".mp3") + ".low.mp3")
    return low if not full.is_file() and low.is_file() else full


def vocalset(root: Path, target: str = "technique", valid_fraction: float = 0.1, seed: int = SPLIT_SEED
             ) -> list[dict]:
    """VocalSet recordings ``FULL/<singer>/<context>/<technique>/<file>.wav`` (singer folders
    ``female1``.. or ``f1``..; labels use the short form ``f1``/``m10``). The five files MARBLE
    deletes (`VOCALSET_REMOVED`: a duplicate ``(1)`` copy and four not in the paper's Table 2) are
    left out.

    ``"technique"``: the ten techniques of MARBLE's task; singers f2 f8 m3 m5 m10 (VocalSet's
    ``test_singers_technique.txt``, as in MARBLE) are the test split, and `valid_fraction` of the
    other recordings, drawn with `seed`, the valid split. ``"singer"``: every recording, labelled by
    singer, split at random 0.7/0.1/0.2 by recording with `seed` (a singer-disjoint test set cannot
    be used to identify singers; MARBLE also splits by recording).
    """
    if target not in ("technique", "singer"):
        raise ValueError(f"target must be 'technique' or 'singer', got {target!r}")
    folder = Path(root) / "FULL"
    if not folder.is_dir() and Path(root).name == "FULL":
        folder = Path(root)
    files = sorted(p for p in folder.glob("*/*/*/*.wav")
                   if not p.name.startswith(".") and f"{p.parent.name}/{p.name}" not in VOCALSET_REMOVED)
    if not files:
        raise FileNotFoundError(f"{folder}: no recordings '<singer>/<context>/<technique>/<file>.wav' found")
    items = {str(p.relative_to(folder)): (p, _vocalset_singer(p, folder), p.parent.name) for p in files}
    if target == "singer":
        splits = random_split(items, seed=seed)
        return [{"path": str(p), "split": splits[id_], "labels": singer, "id": id_}
                for id_, (p, singer, _) in items.items()]
    items = {id_: item for id_, item in items.items() if item[2] in VOCALSET_TECHNIQUES}
    pool = [id_ for id_, (_, singer, _) in items.items() if singer not in VOCALSET_TEST_SINGERS]
    valid = hold_out(pool, valid_fraction, seed)
    return [{"path": str(p), "labels": technique, "id": id_,
             "split": "test" if singer in VOCALSET_TEST_SINGERS else "valid" if id_ in valid else "train"}
            for id_, (p, singer, technique) in items.items()]


def _vocalset_singer(path: Path, folder: Path) -> str:
    """Short singer id (``f2``, ``m10``) from the singer folder of `path`."""
    name = path.relative_to(folder).parts[0]
    match = _SINGER_FOLDER.match(name.lower())
    if match is None:
        raise ValueError(f"{path}: singer folder {name!r} is not female<N>/male<N> (or f<N>/m<N>)")
    return f"{match[1]}{int(match[2])}"


def giantsteps_mtg_key(
    root: Path, mtg_root: Path | None = None, valid_fraction: float = 0.1, seed: int = SPLIT_SEED
) -> list[dict]:
    """Train on GiantSteps-MTG key, test on GiantSteps key (the protocol of MARBLE and jukemir).

    `root` holds ``giantsteps-key-dataset/`` and ``giantsteps-mtg-key-dataset/``, or is the
    GiantSteps key folder itself with `mtg_root` given. GiantSteps key is read as by
    `datasets.giantsteps_key` (``annotations/key/<id>.LOFI.key``, ``audio/<id>.LOFI.mp3``).
    GiantSteps-MTG key: ``annotations/annotations.txt`` (tab-separated ID, MANUAL KEY, C), keeping
    confidence C = 2 with a single key (no ``/``), as Korzeniowski & Widmer 2018 and MARBLE do;
    audio ``audio/<ID>.LOFI.mp3``. `valid_fraction` of it, drawn with `seed`, is the valid split
    (MARBLE instead holds out artists by hash, which needs beatport_metadata.txt).
    """

    root = Path(root)
    if mtg_root is None:
        key_root, mtg_root = (_giantsteps_folder(root, name) for name in _GIANTSTEPS_FOLDERS)
    else:
        key_root, mtg_root = root, Path(mtg_root)
    shared = root / "audio"  # MARBLE's layout: one audio folder beside both repositories
    test = [{"path": path, "split": "test", "labels": key, "id": Path(path).name.split(".")[0]}
            for path, key in giantsteps_items(key_root, _audio_folder(key_root, shared))]
    test = check_audio(test, key_root / "annotations" / "key")
    source = mtg_root / "annotations" / "annotations.txt"
    keys = _mtg_keys(source)
    valid = hold_out(list(keys), valid_fraction, seed)
    mtg_audio = _audio_folder(mtg_root, shared)
    train = [{"path": str(mtg_audio / f"{id_}.LOFI.mp3"), "split": "valid" if id_ in valid else "train",
              "labels": key, "id": id_} for id_, key in sorted(keys.items(), key=lambda kv: int(kv[0]))]
    return check_audio(train, source) + test


def _giantsteps_folder(root: Path, name: str) -> Path:
    """``root/name``, or the one ``root/name-<commit>`` a repository download unpacks to."""
    if (root / name).is_dir():
        return root / name
    found = sorted(p for p in root.glob(f"{name}-*") if p.is_dir())
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(f"{root}: no {name}/ folder (nor one {name}-<commit>/)"
                            + (f"; several match: {', '.join(p.name for p in found)}" if found else ""))


def _audio_folder(dataset: Path, shared: Path) -> Path:
    """The dataset's own ``audio/``, else the shared one beside it."""
    return dataset / "audio" if (dataset / "audio").is_dir() or not shared.is_dir() else shared


def _mtg_keys(source: Path) -> dict[str, str]:
    """ID -> mir_eval key of the confident (C = 2), single-key lines of GiantSteps-MTG annotations.txt."""

    lines = read_lines(source)
    if not lines or [f.strip() for f in lines[0][1].split("\t")] != ["ID", "MANUAL KEY", "C"]:
        raise ValueError(f"{source}:1: expected the header ID, MANUAL KEY, C (tab-separated)")
    keys: dict[str, str] = {}
    for n, line in lines[1:]:
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 3 or not fields[0].isdigit() or fields[2] not in ("0", "1", "2"):
            raise ValueError(f"{source}:{n}: expected an integer ID, a key and a confidence 0/1/2, got {line!r}")
        id_, key, confidence = fields
        if id_ in keys:
            raise ValueError(f"{source}:{n}: duplicate ID {id_}")
        if confidence != "2" or "/" in key:
            continue
        try:
            keys[id_] = normalise_key(key)
        except ValueError:
            raise ValueError(f"{source}:{n}: unknown key {key!r}; expected e.g. 'C# minor'") from None
    return keys


def emomusic(root: Path) -> list[dict]:
    """Emomusic (1000 songs, MediaEval 2013) static arousal/valence, labels ``[arousal, valence]``.

    Reads ``songs_info.csv`` and ``static_annotations.csv`` (song_id, mean_arousal, mean_valence)
    from `root` or ``root/annotations``; audio is ``clips_45seconds/<song_id>.mp3``. MARBLE's split
    (from jukemir): the MediaEval 2013 "evaluation" set is test; the other songs go to valid when
    sha1 of the artist name (lower-cased, ASCII letters and spaces only) mod 10 is 8 or 9, else to
    train. Targets are the raw 1-9 means (MARBLE standardises them with training statistics).
    """
    root = Path(root)
    folder = root if (root / "songs_info.csv").exists() else root / "annotations"
    info = _read_csv(folder / "songs_info.csv", ("song_id", "Artist", "Mediaeval 2013 set"))
    static = _read_csv(folder / "static_annotations.csv", ("song_id", "mean_arousal", "mean_valence"))
    targets = {}
    for n, record in static:
        song = _song_id(folder / "static_annotations.csv", n, record)
        try:
            targets[song] = [float(record["mean_arousal"]), float(record["mean_valence"])]
        except ValueError:
            raise ValueError(f"{folder / 'static_annotations.csv'}:{n}: mean_arousal and mean_valence "
                             f"must be numbers") from None
    rows, seen = [], set()
    for n, record in info:
        song = _song_id(folder / "songs_info.csv", n, record)
        if song not in targets or song in seen:
            problem = "has no static annotation" if song not in targets else "is listed twice"
            raise ValueError(f"{folder / 'songs_info.csv'}:{n}: song {song} {problem}")
        seen.add(song)
        split = "test" if record["Mediaeval 2013 set"] == "evaluation" else _emomusic_split(record["Artist"])
        rows.append({"path": str(root / "clips_45seconds" / f"{song}.mp3"), "split": split,
                     "labels": targets[song], "id": str(song)})
    return check_audio(sorted(rows, key=lambda row: int(row["id"])), folder / "songs_info.csv")


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line, record) of a comma-separated file with stripped names and values; `columns` must exist."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            table = [(reader.line_num, record) for record in reader if record]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    if not table:
        raise ValueError(f"{path}: empty file")
    header = [c.strip() for c in table[0][1]]
    absent = [c for c in columns if c not in header]
    if absent:
        raise ValueError(f"{path}:1: header has no column(s) {', '.join(absent)}")
    records = []
    for n, record in table[1:]:
        if len(record) != len(header):
            raise ValueError(f"{path}:{n}: expected {len(header)} columns, got {len(record)}")
        records.append((n, {k: v.strip() for k, v in zip(header, record)}))
    return records


def _song_id(path: Path, n: int, record: dict[str, str]) -> int:
    """The integer song_id of a record."""
    try:
        return int(float(record["song_id"]))
    except ValueError:
        raise ValueError(f"{path}:{n}: song_id must be an integer, got {record['song_id']!r}") from None


def _emomusic_split(artist: str) -> str:
    """MARBLE's (jukemir's) artist-hash train/valid assignment: sha1 mod 10 in {8, 9} is valid."""
    name = " ".join("".join(c for c in artist.lower() if ord(c) < 128 and (c.isalpha() or c.isspace())).split())
    return "valid" if int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % 10 >= 8 else "train"


EFFICIENT_READERS: dict[str, DatasetReader] = {
    "mtg-jamendo-top50": DatasetReader(partial(mtg_jamendo, subset="top50tags"), "multilabel", {"top_k": 50}),
    "mtg-jamendo-genre": DatasetReader(partial(mtg_jamendo, subset="genre"), "multilabel"),
    "mtg-jamendo-instrument": DatasetReader(partial(mtg_jamendo, subset="instrument"), "multilabel"),
    "mtg-jamendo-moodtheme": DatasetReader(partial(mtg_jamendo, subset="moodtheme"), "multilabel"),
    "vocalset-technique": DatasetReader(partial(vocalset, target="technique"), "multiclass", {"window": 3.0}),
    "vocalset-singer": DatasetReader(partial(vocalset, target="singer"), "multiclass", {"window": 3.0}),
    "giantsteps-mtg-key": DatasetReader(giantsteps_mtg_key, "key", expected={"test": GIANTSTEPS_KEY_TRACKS}),
    "emomusic": DatasetReader(emomusic, "regression", {"targets": ["arousal", "valence"]}),
}
