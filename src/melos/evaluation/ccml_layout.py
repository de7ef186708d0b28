"""The reference layout of CultureMERT's tagging suite, from the ccml code (github.com/pxaris/ccml,
"From West to East", ISMIR 2023), which CultureMERT and LC-Protonets follow.

A dataset folder holds ``audios/<id>.mp3`` and ``split/``: ``train.npy``, ``valid.npy`` and
``test.npy`` (arrays of ids, the random 0.7/0.1/0.2 split the code publishes) and ``metadata.npy``
(a pickled dict id -> tags). melos never loads pickles, so the tags are read from
``split/metadata.json`` (that dict converted once, `METADATA_CONVERSION`) or from the Dunya API's
recording records ``metadata/<id>.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .tasks import SPLITS

__all__ = ["METADATA_CONVERSION", "ccml_rows", "ccml_split"]

METADATA_CONVERSION = ("python -c \"import json, numpy as np; json.dump({str(k): v for k, v in "
                       "np.load('split/metadata.npy', allow_pickle=True).item().items()}, "
                       "open('split/metadata.json', 'w'))\"")


def ccml_split(folder: Path) -> dict[str, str] | None:
    """id -> split from ``folder/{train,valid,test}.npy``; None when there is no ``train.npy``."""
    folder = Path(folder)
    if not (folder / "train.npy").is_file():
        return None
    splits: dict[str, str] = {}
    for split in SPLITS:
        source = folder / f"{split}.npy"
        for id_ in _ids(source):
            if id_ in splits:
                raise ValueError(f"{source}: id {id_!r} is already in the {splits[id_]!r} split")
            splits[id_] = split
    return splits


def _ids(source: Path) -> list[str]:
    """The ids of one split array, loaded without pickle (ids are strings or integers)."""
    try:
        array = np.load(source)  # never allow_pickle: a split list must not run code
    except FileNotFoundError:
        raise FileNotFoundError(f"{source}: file not found") from None
    except ValueError:
        raise ValueError(f"{source}: holds pickled objects, which melos does not load; convert it once with "
                         f"np.save(path, np.load(path, allow_pickle=True).astype(str))") from None
    return [str(id_) for id_ in array.reshape(-1).tolist()]


def ccml_rows(root: Path, record_tags: Callable[[Path, dict], list[str]]) -> tuple[list[dict], Path]:
    """Manifest rows of a ccml dataset folder, and the metadata source to name in errors.

    Tags come from ``split/metadata.json`` (id -> list of tags, or null where ccml's fetch failed),
    else from ``metadata/<id>.json`` through `record_tags(file, record)`. Audio is
    ``audios/<id>.mp3`` (ccml), or ``audio/<id>.mp3``. Ids listed in a split with no metadata are
    an error naming the first.
    """
    root = Path(root)
    splits = ccml_split(root / "split")
    if splits is None:
        raise FileNotFoundError(f"{root / 'split'}: no train.npy (the ccml layout's split)")
    tags, source = _tags(root, splits, record_tags)
    audio = root / "audios" if (root / "audios").is_dir() or not (root / "audio").is_dir() else root / "audio"
    return [{"path": str(audio / f"{id_}.mp3"), "split": splits[id_], "labels": tags[id_], "id": id_}
            for id_ in sorted(splits)], source


def _tags(root: Path, splits: dict[str, str], record_tags: Callable[[Path, dict], list[str]]
          ) -> tuple[dict[str, list[str]], Path]:
    """id -> tags from split/metadata.json, else from the metadata/<id>.json records."""
    table = root / "split" / "metadata.json"
    if table.is_file():
        data = _json(table)
        unknown = sorted(set(splits) - set(data))
        if unknown:
            raise ValueError(f"{table}: {len(unknown)} ids of the split have no tags, e.g. {unknown[0]!r}")
        tags = {}
        for id_ in splits:
            value = data[id_] or []
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise ValueError(f"{table}: tags of {id_!r} must be a list of strings or null")
            tags[id_] = sorted(set(value))
        return tags, table
    if (root / "split" / "metadata.npy").is_file() and not (root / "metadata").is_dir():
        raise FileNotFoundError(f"{root / 'split' / 'metadata.npy'}: a pickle, which melos does not load; "
                                f"convert it once, in {root}, with: {METADATA_CONVERSION}")
    folder = root / "metadata"
    missing = [id_ for id_ in sorted(splits) if not (folder / f"{id_}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: {len(missing)} ids of the split have no '<id>.json' record "
                                f"(nor is there split/metadata.json), e.g. {missing[0]}.json")
    return {id_: record_tags(folder / f"{id_}.json", _json(folder / f"{id_}.json")) for id_ in splits}, folder


def _json(path: Path) -> dict:
    """A JSON object from `path`; errors name the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data
