"""Readers for the CultureMERT tagging suite: FMA-medium, Lyra, Turkish makam, and the Carnatic
and Hindustani collections (Dunya, in the ccml layout, or their Saraga 1.5 subsets).

Like the readers in `datasets`, each takes the dataset root, reads only metadata and returns
manifest rows ``{"path", "split", "labels", "id"}`` (labels: a list of tags; the top-k tags are
counted on the training split by `tasks.load_task`, as ccml does). Where the ccml code publishes
its split (``split/*.npy``, see `ccml_layout`) it is used; else FMA keeps its official split,
Lyra its own, and the others use `random_split` (0.7/0.1/0.2, seeded, the convention of the ccml /
LC-Protonets splits) unless ``root/splits/{train,valid,test}.txt`` id lists replace it.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .ccml_layout import ccml_rows, ccml_split
from .dataset_files import DatasetReader, check_audio, hold_out, read_lines
from .tasks import SPLITS

__all__ = ["CULTUREMERT_READERS", "dunya_carnatic", "dunya_hindustani", "fma_medium", "lyra",
           "makam", "published_split", "random_split",
           "saraga_carnatic", "saraga_hindustani"]

SPLIT_SEED = 0
LYRA_VALID = 0.1  # of Lyra's training split, held out (seeded) for validation
_FMA_SPLITS = {"training": "train", "validation": "valid", "test": "test"}
_FMA_MEDIUM = ("small", "medium")  # FMA-medium is the medium subset plus the small one it contains
_LYRA_TAG_COLUMNS = ("genres", "instruments", "place")
# Saraga 1.5's 249 Carnatic and 108 Hindustani recordings (mirdata's index), cut 0.7/0.1/0.2 by random_split
SARAGA_CARNATIC_SPLIT = {"train": 174, "valid": 25, "test": 50}
SARAGA_HINDUSTANI_SPLIT = {"train": 76, "valid": 11, "test": 21}
_SARAGA_AUDIO_SUFFIXES = (".mp3.mp3", ".mp3", ".wav")  # Saraga 1.5 names the mix "<title>.mp3.mp3"


def random_split(
    ids: Iterable[str], seed: int = SPLIT_SEED, fractions: Sequence[float] = (0.7, 0.1, 0.2)
) -> dict[str, str]:
    """Map each id to train/valid/test: sort the ids, shuffle them with `seed`, cut by `fractions`.

    Sorting first makes the result depend only on the set of ids, not on the order they were read.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    order = sorted(set(ids))
    random.Random(seed).shuffle(order)
    n_train = round(len(order) * fractions[0])
    n_valid = round(len(order) * fractions[1])
    return {
        id_: "train" if i < n_train else "valid" if i < n_train + n_valid else "test"
        for i, id_ in enumerate(order)
    }


def published_split(folder: Path, ids: Iterable[str]) -> dict[str, str]:
    """Read ``folder/<split>.txt`` (one id per line) for each split; ids must be among `ids`.

    Ids in no list are left out of the task, as in the published splits.
    """
    known = set(ids)
    splits: dict[str, str] = {}
    for split in SPLITS:
        source = Path(folder) / f"{split}.txt"
        for n, id_ in read_lines(source):
            if id_ not in known:
                raise ValueError(f"{source}:{n}: unknown id {id_!r} (not in the dataset's metadata)")
            if id_ in splits:
                raise ValueError(f"{source}:{n}: id {id_!r} is already in the {splits[id_]!r} split")
            splits[id_] = split
    return splits


def _split_rows(root: Path, items: dict[str, tuple[Path, list[str]]]) -> list[dict]:
    """Rows for `items` (id -> (audio, tags)) split by ``root/splits`` if present, else at random."""
    folder = root / "splits"
    if folder.is_dir():
        splits, extra = published_split(folder, items), {}
    else:
        splits, extra = random_split(items), {"split_seed": SPLIT_SEED}
    return [
        {"path": str(items[id_][0]), "split": splits[id_], "labels": items[id_][1], "id": id_, **extra}
        for id_ in sorted(items)
        if id_ in splits
    ]


def _open_csv(path: Path, delimiter: str = ",") -> tuple[Any, Any]:
    """Open `path` for csv reading; a missing file is named in the error."""
    try:
        f = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    return f, csv.reader(f, delimiter=delimiter)


def fma_medium(root: Path) -> list[dict]:
    """FMA-medium genre tags as CultureMERT / ccml use them: every genre of ``track/genres_all``.

    ``fma_metadata/tracks.csv`` has a two-level header (``set/split``, ``set/subset``,
    ``track/genres_all``) and a ``track_id`` index-name line; ``genres_all`` is a list of genre ids
    (``"[21, 12]"``) holding each genre of the track and all its parents, named by the ``title``
    column of ``fma_metadata/genres.csv`` (``genre_id,#tracks,parent,title,top_level``); top_k=20
    keeps the 20 most frequent. Audio is ``fma_medium/<id // 1000:03d>/<id:06d>.mp3``. The split is
    ccml's published random one when ``split/{train,valid,test}.npy`` (track ids, copied from
    ccml's ``data/fma/split/``) are present, else FMA's official ``set/split``.
    """
    root = Path(root)
    source = root / "fma_metadata" / "tracks.csv"
    genres = _fma_genres(root / "fma_metadata" / "genres.csv")
    f, reader = _open_csv(source)
    with f:
        columns = _fma_columns(source, reader)
        rows, line = [], reader.line_num
        for record in reader:
            n, line = line + 1, reader.line_num
            if not record or record[0] == "track_id":
                continue
            row = _fma_row(root, source, n, record, columns, genres)
            if row is not None:
                rows.append(row)
    ccml = ccml_split(root / "split")
    if ccml is not None:
        rows = _fma_ccml_split(root / "split", rows, ccml)
    return check_audio(rows, source)


def _fma_genres(source: Path) -> dict[int, str]:
    """genre id -> title from FMA's genres.csv."""
    f, reader = _open_csv(source)
    with f:
        table = [(reader.line_num, record) for record in reader if record]
    if not table or table[0][1][:1] != ["genre_id"] or "title" not in table[0][1]:
        raise ValueError(f"{source}:1: expected the header genre_id,#tracks,parent,title,top_level")
    column = table[0][1].index("title")
    genres = {}
    for n, record in table[1:]:
        try:
            genres[int(record[0])] = record[column].strip()
        except (ValueError, IndexError):
            raise ValueError(f"{source}:{n}: expected an integer genre_id and a title") from None
    return genres


def _fma_ccml_split(folder: Path, rows: list[dict], splits: dict[str, str]) -> list[dict]:
    """`rows` re-split by ccml's id lists (ids may be zero-padded); tracks in no list are left out."""
    try:
        by_track = {str(int(id_)): split for id_, split in splits.items()}
    except ValueError:
        raise ValueError(f"{folder}: FMA track ids must be integers") from None
    known = {row["id"] for row in rows}
    unknown = sorted(set(by_track) - known, key=int)
    if unknown:
        raise ValueError(f"{folder}: {len(unknown)} listed tracks are not in FMA-medium's tracks.csv, "
                         f"e.g. {unknown[0]}")
    return [{**row, "split": by_track[row["id"]]} for row in rows if row["id"] in by_track]


def _fma_columns(source: Path, reader: Any) -> dict[str, int]:
    """Indices of split, subset and genres_all from the two header lines of tracks.csv."""
    try:
        top, sub = next(reader), next(reader)
    except StopIteration:
        raise ValueError(f"{source}: expected two header lines") from None
    names = {(a, b): i for i, (a, b) in enumerate(zip(top, sub))}
    wanted = {"split": ("set", "split"), "subset": ("set", "subset"), "genres_all": ("track", "genres_all")}
    absent = [f"{a}/{b}" for a, b in wanted.values() if (a, b) not in names]
    if absent:
        raise ValueError(f"{source}:1: header has no column(s) {', '.join(absent)}")
    return {key: names[pair] for key, pair in wanted.items()}


def _fma_row(root: Path, source: Path, n: int, record: list[str], columns: dict[str, int],
             genres: dict[int, str]) -> dict | None:
    """One manifest row for a tracks.csv record, or None when the track is not in FMA-medium."""
    if len(record) <= max(columns.values()):
        raise ValueError(f"{source}:{n}: expected at least {max(columns.values()) + 1} columns, got {len(record)}")
    if record[columns["subset"]] not in _FMA_MEDIUM:
        return None
    try:
        track = int(record[0])
    except ValueError:
        raise ValueError(f"{source}:{n}: track id must be an integer, got {record[0]!r}") from None
    split = _FMA_SPLITS.get(record[columns["split"]])
    if split is None:
        raise ValueError(f"{source}:{n}: split must be training, validation or test, got {record[columns['split']]!r}")
    try:
        ids = json.loads(record[columns["genres_all"]])
    except json.JSONDecodeError:
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ValueError(f"{source}:{n}: genres_all must be a list of genre ids, "
                         f"got {record[columns['genres_all']]!r}")
    if not ids:
        raise ValueError(f"{source}:{n}: track {track} has no genres_all")
    unknown = [i for i in ids if i not in genres]
    if unknown:
        raise ValueError(f"{source}:{n}: genre id {unknown[0]} of track {track} is not in genres.csv")
    path = root / "fma_medium" / f"{track // 1000:03d}" / f"{track:06d}.mp3"
    return {"path": str(path), "split": split, "labels": sorted({genres[i] for i in ids}), "id": str(track)}


def lyra(root: Path) -> list[dict]:
    """Lyra (Greek traditional and folk) tags from ``data/raw.tsv`` (or ``raw.tsv``) of pxaris/lyra-dataset.

    Tags are ``genres--X``, ``instruments--X`` and ``place--X`` for each ``|``-separated value of
    those columns (``None`` means unknown). Lyra ships YouTube links, not audio: the audio is
    expected at ``audio/<id>.mp3``. The split is the dataset's own, ``data/split/training.tsv`` and
    ``test.tsv`` (raw.tsv's header and rows), with a seeded LYRA_VALID of training held out for
    validation (Lyra has no validation split); ``root/splits/`` id lists replace it, and without
    either the split is `random_split`.
    """
    root = Path(root)
    source = root / "data" / "raw.tsv"
    if not source.exists() and (root / "raw.tsv").exists():
        source = root / "raw.tsv"
    f, reader = _open_csv(source, delimiter="\t")
    with f:
        table = [(n, record) for n, record in enumerate(reader, start=1) if record]
    if not table or any(c not in table[0][1] for c in ("id", *_LYRA_TAG_COLUMNS)):
        raise ValueError(f"{source}:1: expected a tab-separated header with id, {', '.join(_LYRA_TAG_COLUMNS)}")
    header = table[0][1]
    items: dict[str, tuple[Path, list[str]]] = {}
    for n, record in table[1:]:
        if len(record) != len(header):
            raise ValueError(f"{source}:{n}: expected {len(header)} columns, got {len(record)}")
        fields = dict(zip(header, record))
        id_ = fields["id"].strip()
        if not id_ or id_ in items:
            raise ValueError(f"{source}:{n}: {'empty' if not id_ else 'duplicate'} id {id_!r}")
        tags = sorted({f"{column}--{value.strip()}" for column in _LYRA_TAG_COLUMNS
                       for value in fields[column].split("|") if value.strip() not in ("", "None")})
        items[id_] = (root / "audio" / f"{id_}.mp3", tags)
    own = source.parent / "split"
    if not (root / "splits").is_dir() and (own / "training.tsv").is_file():
        return check_audio(_lyra_split_rows(own, items), own)
    return check_audio(_split_rows(root, items), source)


def _lyra_split_rows(folder: Path, items: dict[str, tuple[Path, list[str]]]) -> list[dict]:
    """Rows split by Lyra's own ``training.tsv`` / ``test.tsv`` (ids in the ``id`` column), with
    LYRA_VALID of the training ids (seeded) held out as valid."""
    splits: dict[str, str] = {}
    for name in ("training", "test"):
        source = folder / f"{name}.tsv"
        f, reader = _open_csv(source, delimiter="\t")
        with f:
            table = [(n, record) for n, record in enumerate(reader, start=1) if record]
        if not table or "id" not in table[0][1]:
            raise ValueError(f"{source}:1: expected a tab-separated header with an id column")
        column = table[0][1].index("id")
        for n, record in table[1:]:
            id_ = record[column].strip() if column < len(record) else ""
            if id_ not in items:
                raise ValueError(f"{source}:{n}: unknown id {id_!r} (not in raw.tsv)")
            if id_ in splits:
                raise ValueError(f"{source}:{n}: id {id_!r} is already in the {splits[id_]!r} split")
            splits[id_] = "train" if name == "training" else "test"
    splits |= dict.fromkeys(hold_out([i for i, split in splits.items() if split == "train"], LYRA_VALID, SPLIT_SEED),
                            "valid")
    return [{"path": str(items[id_][0]), "split": splits[id_], "labels": items[id_][1], "id": id_,
             "split_seed": SPLIT_SEED} for id_ in sorted(items) if id_ in splits]


def saraga_carnatic(root: Path) -> list[dict]:
    """Saraga 1.5 Carnatic tags (raga, tala, form, instruments) from each recording's JSON.

    Reads ``saraga1.5_carnatic/<concert>/<title>/<title>.json`` (or the folder's only JSON, e.g.
    ``<artist> - <title>.json``, with its audio ``<artist> - <title>.mp3.mp3``; fields ``raaga``/``taala`` with
    ``common_name``, ``form`` with ``name``, ``artists[].instrument.name``, ``mbid``); `root` may
    be that folder or the one holding it. Recordings are identified by their MusicBrainz id.
    """
    return _saraga(Path(root), "saraga1.5_carnatic", {"raga": "raaga", "tala": "taala", "form": "form"})


def saraga_hindustani(root: Path) -> list[dict]:
    """Saraga 1.5 Hindustani tags (raga, tala, form, instruments) from each recording's JSON.

    As `saraga_carnatic`, with ``saraga1.5_hindustani`` and the fields ``raags``, ``taals`` and
    ``forms`` (each with ``common_name``).
    """
    return _saraga(Path(root), "saraga1.5_hindustani", {"raga": "raags", "tala": "taals", "form": "forms"})


def _saraga(root: Path, collection: str, fields: dict[str, str]) -> list[dict]:
    """Tags and audio of every recording JSON in a Saraga collection, then the shared split."""
    folder = root / collection if (root / collection).is_dir() else root
    files = [_recording_json(recording) for recording in sorted({p.parent for p in folder.glob("*/*/*.json")})]
    if not files:
        raise FileNotFoundError(f"{folder}: no recording metadata '<release>/<title>/<title>.json' found")
    items: dict[str, tuple[Path, list[str]]] = {}
    for file in files:
        meta = _read_json(file)
        mbid = meta.get("mbid")
        if not isinstance(mbid, str) or not mbid:
            raise ValueError(f"{file}: no recording 'mbid'")
        if mbid in items:
            raise ValueError(f"{file}: mbid {mbid} is also the id of {items[mbid][0]}")
        items[mbid] = (_saraga_audio(file), _saraga_tags(file, meta, fields))
    return check_audio(_split_rows(root, items), folder)


def makam(root: Path) -> list[dict]:
    """CompMusic Turkish-makam tags (makam, usul, instruments) from Dunya recording records.

    In the ccml reference layout (``split/train.npy`` present, see `ccml_layout`) the split is
    the published one and the audio ``audios/<mbid>.mp3``. Otherwise the layout is melos's own
    (Dunya has no file release): ``metadata/<mbid>.json`` holding the Dunya API's makam recording
    object (``makamlist[].name``, ``usullist[].name``, ``performers[].instrument.name``), the audio
    at ``audio/<mbid>.mp3`` and the shared split.
    """
    root = Path(root)
    if (root / "split" / "train.npy").is_file():
        rows, source = ccml_rows(root, _makam_tags)
        return check_audio(rows, source)
    folder = root / "metadata"
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{folder}: no recording metadata '<mbid>.json' found")
    items = {file.stem: (root / "audio" / f"{file.stem}.mp3", _makam_tags(file, _read_json(file)))
             for file in files}
    return check_audio(_split_rows(root, items), folder)


def _makam_tags(file: Path, meta: dict) -> list[str]:
    """``makam--X``, ``usul--X`` and ``instrument--X`` tags of a Dunya makam recording record."""
    tags = {f"{tag}--{name}" for tag, key in (("makam", "makamlist"), ("usul", "usullist"))
            for name in _names(file, _entries(file, meta, key), key)}
    instruments = [p.get("instrument") for p in _entries(file, meta, "performers")]
    tags |= {f"instrument--{i['name'].strip()}" for i in instruments
             if isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"].strip()}
    return sorted(tags)


def dunya_carnatic(root: Path) -> list[dict]:
    """The Dunya CompMusic Carnatic collection in the ccml layout (`ccml_layout`): raga, tala, form
    and instrument tags, from ``split/metadata.json`` or the Dunya records ``metadata/<mbid>.json``
    (fields as in Saraga: ``raaga``, ``taala``, ``form``, ``artists[].instrument.name``)."""
    fields = {"raga": "raaga", "tala": "taala", "form": "form"}
    rows, source = ccml_rows(Path(root), lambda file, meta: _saraga_tags(file, meta, fields))
    return check_audio(rows, source)


def dunya_hindustani(root: Path) -> list[dict]:
    """As `dunya_carnatic`, for the Hindustani collection (``raags``, ``taals``, ``forms``)."""
    fields = {"raga": "raags", "tala": "taals", "form": "forms"}
    rows, source = ccml_rows(Path(root), lambda file, meta: _saraga_tags(file, meta, fields))
    return check_audio(rows, source)


def _names(file: Path, entries: list[dict], key: str) -> list[str]:
    """``common_name`` (else ``name``) of each entry under `key`; an entry with neither is an error."""
    names = []
    for entry in entries:
        name = entry.get("common_name") or entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{file}: an entry of {key!r} has no common_name or name")
        names.append(name.strip())
    return names


def _read_json(path: Path) -> dict:
    """A JSON object from `path`; errors name the file (and the line for invalid JSON)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _saraga_tags(file: Path, meta: dict, fields: dict[str, str]) -> list[str]:
    """``raga--X``, ``tala--X``, ``form--X`` and ``instrument--X`` tags of one recording (absent fields: none)."""
    tags = {f"{tag}--{name}" for tag, key in fields.items() for name in _names(file, _entries(file, meta, key), key)}
    for entry in _entries(file, meta, "artists"):
        instrument = entry.get("instrument")
        name = instrument.get("name") if isinstance(instrument, dict) else None
        if isinstance(name, str) and name.strip():
            tags.add(f"instrument--{name.strip()}")
    return sorted(tags)


def _entries(file: Path, meta: dict, key: str) -> list[dict]:
    """The list of objects under `key` (empty when absent); anything else is an error."""
    value = meta.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{file}: {key!r} must be a list of objects")
    return value


def _recording_json(folder: Path) -> Path:
    """A Saraga recording folder's metadata: ``<title>.json``, or its only JSON (81 of Saraga 1.5
    Carnatic's 249 recordings are named ``<artist> - <title>.json`` in a ``<title>`` folder)."""
    files = sorted(folder.glob("*.json"))
    named = [p for p in files if p.stem == folder.name]
    if named or len(files) == 1:
        return (named or files)[0]
    raise ValueError(f"{folder}: {len(files)} JSON files and none is named {folder.name}.json; "
                     f"which is the recording's metadata?")


def _saraga_audio(file: Path) -> Path:
    """The recording's mix next to its JSON: the first existing suffix, else the first candidate."""
    candidates = [file.with_name(file.stem + suffix) for suffix in _SARAGA_AUDIO_SUFFIXES]
    return next((p for p in candidates if p.is_file()), candidates[0])


CULTUREMERT_READERS: dict[str, DatasetReader] = {
    "fma-medium": DatasetReader(fma_medium, "multilabel", {"top_k": 20}),
    "lyra": DatasetReader(lyra, "multilabel", {"top_k": 30}),
    "saraga-carnatic": DatasetReader(saraga_carnatic, "multilabel", {"top_k": 20, "max_duration": 330.0},
                                     SARAGA_CARNATIC_SPLIT),
    "saraga-hindustani": DatasetReader(saraga_hindustani, "multilabel", {"top_k": 20, "max_duration": 780.0},
                                       SARAGA_HINDUSTANI_SPLIT),
    "makam": DatasetReader(makam, "multilabel", {"top_k": 30, "max_duration": 150.0}),
    "dunya-carnatic": DatasetReader(dunya_carnatic, "multilabel", {"top_k": 20, "max_duration": 330.0}),
    "dunya-hindustani": DatasetReader(dunya_hindustani, "multilabel", {"top_k": 20, "max_duration": 780.0}),
}
