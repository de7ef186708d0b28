"""Turn the official metadata of public datasets into probing-task manifests.

Each reader takes the dataset's root folder (already on disk), reads only metadata files and
returns manifest rows ``{"path": str, "split": ..., "labels": ...}``; `write_task` stores them
next to a task file that `melos.evaluation.tasks.load_task` reads. Audio is never opened.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..utils.atomic import write_text
from .culturemert_readers import CULTUREMERT_READERS
from .dataset_files import DatasetReader, check_audio, giantsteps_items, normalise_key, read_lines
from .efficient_readers import EFFICIENT_READERS
from .tasks import SPLITS, TASK_TYPES

__all__ = ["READERS", "DatasetReader", "giantsteps_key", "gtzan", "magnatagatune", "normalise_key", "nsynth",
           "write_task"]

MTAT_TOP = 50  # tags of the MagnaTagATune task: the most frequent over the whole dataset
GTZAN_AUDIO = ("genres", "genres_original", "Data/genres_original")  # genres.tar.gz, then the Kaggle zip
GTZAN_SPLIT = {"train": 443, "valid": 197, "test": 290}  # the fault-filtered split (Kereliuk et al. 2015)
NSYNTH_SPLIT = {"train": 289205, "valid": 12678, "test": 4096}  # NSynth v2.2 as distributed


def write_task(
    rows: list[dict], folder: Path, name: str, type: str, window: float = 30.0, **options: Any
) -> Path:
    """Write ``folder/<name>.jsonl`` and ``folder/<name>.yaml`` (each atomically); return the YAML path.

    Relative row paths are made absolute against the working directory (a reader given a relative
    root returns them so), because `load_task` resolves relative paths against the task's folder.
    `options` (e.g. ``top_k=50``, ``max_duration=30``) become extra keys of the task file.
    """
    if type not in TASK_TYPES:
        raise ValueError(f"type must be one of {', '.join(TASK_TYPES)}, got {type!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / f"{name}.jsonl"
    write_text(manifest, "".join(json.dumps({**row, "path": os.path.abspath(row["path"])}) + "\n" for row in rows))
    spec = {"name": name, "type": type, "manifest": manifest.name, "window": window, **options}
    task = folder / f"{name}.yaml"
    write_text(task, yaml.safe_dump(spec, sort_keys=False))
    return task


def magnatagatune(root: Path, top: int = MTAT_TOP) -> list[dict]:
    """MagnaTagATune with the common (musicnn / MARBLE) split and its `top` most frequent tags.

    Reads ``annotations_final.csv`` (tab-separated, quoted, ``clip_id``, 188 0/1 tag columns,
    ``mp3_path`` last) and per split ``<split>.tsv`` (MARBLE's preprocessing), ``<split>.npy``
    (musicnn's index, strings) or ``<split>.txt``: lines ``<index>\t<mp3_path>`` or just the path.
    The tags are counted over every clip of the annotations, as the papers' code does (not over
    the training split), and each clip keeps those of the top `top` it has; paths are
    ``root/mp3/<mp3_path>``, and clips whose mp3 is missing are left out with a warning.
    """
    root = Path(root)
    annotations = root / "annotations_final.csv"
    try:
        with annotations.open(newline="") as f:
            table = [row for row in csv.reader(f, delimiter="\t") if row]
    except FileNotFoundError:
        raise FileNotFoundError(f"{annotations}: file not found") from None
    if not table or table[0][0] != "clip_id" or table[0][-1] != "mp3_path":
        raise ValueError(f"{annotations}: expected a tab-separated header 'clip_id ... mp3_path'")
    tags = table[0][1:-1]
    labels: dict[str, list[str]] = {}
    for n, row in enumerate(table[1:], start=2):
        if len(row) != len(tags) + 2 or any(v not in ("0", "1") for v in row[1:-1]):
            raise ValueError(f"{annotations}:{n}: expected {len(tags)} 0/1 tag columns and an mp3_path")
        labels[row[-1]] = [tag for tag, v in zip(tags, row[1:-1]) if v == "1"]
    counts = Counter(tag for clip in labels.values() for tag in clip)
    kept = {tag for tag, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
    rows = []
    for split in SPLITS:
        source, entries = _mtat_split(root, split)
        for n, entry in entries:
            mp3 = entry.split("\t")[-1].strip()
            if mp3 not in labels:
                raise ValueError(f"{source}:{n}: {mp3!r} is not in {annotations.name}")
            rows.append({"path": str(root / "mp3" / mp3), "split": split,
                         "labels": [tag for tag in labels[mp3] if tag in kept]})
    return check_audio(rows, annotations)


def _mtat_split(root: Path, split: str) -> tuple[Path, list[tuple[int, str]]]:
    """Entries of one MTAT split from ``<split>.tsv``, ``<split>.npy`` or ``<split>.txt``, numbered from 1."""
    tsv, npy, txt = root / f"{split}.tsv", root / f"{split}.npy", root / f"{split}.txt"
    if tsv.exists():
        return tsv, read_lines(tsv)
    if npy.exists():
        try:
            array = np.load(npy)  # never allow_pickle: a split list must not run code
        except ValueError:
            raise ValueError(f"{npy}: holds pickled objects, which melos does not load; save the split as "
                             f"{txt.name} with one mp3 path per line") from None
        return npy, [(n, str(e)) for n, e in enumerate(array.reshape(-1).tolist(), start=1)]
    if txt.exists():
        return txt, read_lines(txt)
    raise FileNotFoundError(f"{tsv}: file not found (nor {npy.name}, {txt.name})")


def gtzan(root: Path) -> list[dict]:
    """GTZAN with the fault-filtered split (``<split>_filtered.txt``, lines ``genre/genre.00000.wav``).

    The audio is found in the layout it came in: ``genres/`` (the original genres.tar.gz, whose
    files are ``.au`` while the split lists name ``.wav``), ``genres_original/`` or
    ``Data/genres_original/`` (the Kaggle zip, ``.wav``). The label is the genre folder name;
    listed files with no audio are left out with a warning.
    """
    root = Path(root)
    audio = next((root / sub for sub in GTZAN_AUDIO if (root / sub).is_dir()), None)
    if audio is None:
        raise FileNotFoundError(f"{root}: no GTZAN audio folder ({', '.join(GTZAN_AUDIO)})")
    rows = []
    for split in SPLITS:
        source = root / f"{split}_filtered.txt"
        for n, line in read_lines(source):
            genre, sep, rest = line.partition("/")
            if not sep or not genre or not rest:
                raise ValueError(f"{source}:{n}: expected 'genre/file.wav', got {line!r}")
            path = audio / line
            if not path.is_file() and path.with_suffix(".au").is_file():
                path = path.with_suffix(".au")
            rows.append({"path": str(path), "split": split, "labels": genre})
    return check_audio(rows, audio)


def giantsteps_key(
    root: Path, valid_fraction: float = 0.1, seed: int = 0, test_fraction: float = 0.2
) -> list[dict]:
    """GiantSteps key (``audio/<id>.LOFI.mp3``, ``annotations/key/<id>.LOFI.key``), keys in mir_eval spelling.

    The MTG key set's ``.key`` files (``key<TAB>confidence<TAB>comment``) are read as
    `giantsteps_items` does: confidence 2, single keys only.

    Standard protocol: GiantSteps key is the test set and GiantSteps-MTG key, if found with the
    same layout under ``root/mtg``, is shuffled by `seed` into train and `valid_fraction` valid.
    Without ``root/mtg`` the GiantSteps files themselves are shuffled by `seed` into test
    (`test_fraction`), valid (`valid_fraction`) and train (the rest), so scores are not
    comparable with the published protocol.
    """
    root = Path(root)
    items = giantsteps_items(root)
    mtg = root / "mtg"
    rng = random.Random(seed)
    if mtg.is_dir():
        test, pool = items, giantsteps_items(mtg)
        rng.shuffle(pool)
    else:
        rng.shuffle(items)
        n_test = round(len(items) * test_fraction)
        test, pool = items[:n_test], items[n_test:]
    n_valid = round(len(pool) * valid_fraction)
    splits = {"test": test, "valid": pool[:n_valid], "train": pool[n_valid:]}
    return check_audio([
        {"path": path, "split": split, "labels": key}
        for split in SPLITS
        for path, key in sorted(splits[split])
    ], root / "annotations" / "key")


def nsynth(root: Path, target: str = "instrument") -> list[dict]:
    """NSynth (``nsynth-<split>/examples.json`` and ``audio/<note_id>.wav``), sorted by note id.

    `target` ``"instrument"`` labels each note with ``instrument_family_str``; ``"pitch"`` with
    its MIDI pitch as a string, so both are multiclass tasks.
    """
    field = {"instrument": "instrument_family_str", "pitch": "pitch"}.get(target)
    if field is None:
        raise ValueError(f"target must be 'instrument' or 'pitch', got {target!r}")
    root = Path(root)
    rows = []
    for split in SPLITS:
        folder = root / f"nsynth-{split}"
        source = folder / "examples.json"
        try:
            examples = json.loads(source.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{source}: file not found") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: invalid JSON ({err})") from None
        if not isinstance(examples, dict):
            raise ValueError(f"{source}: expected an object mapping note ids to examples")
        for note_id in sorted(examples):
            example = examples[note_id]
            if not isinstance(example, dict) or field not in example:
                raise ValueError(f"{source}: example {note_id!r} has no {field!r}")
            path = folder / "audio" / f"{note_id}.wav"
            rows.append({"path": str(path), "split": split, "labels": str(example[field])})
    return check_audio(rows, root)


READERS: dict[str, DatasetReader] = {
    "giantsteps-key": DatasetReader(giantsteps_key, "key"),
    "gtzan": DatasetReader(gtzan, "multiclass", expected=GTZAN_SPLIT),
    "magnatagatune": DatasetReader(magnatagatune, "multilabel", {"top_k": 50}),
    "nsynth-instrument": DatasetReader(partial(nsynth, target="instrument"), "multiclass", {"window": 4.0},
                                       NSYNTH_SPLIT),
    "nsynth-pitch": DatasetReader(partial(nsynth, target="pitch"), "multiclass", {"window": 4.0}, NSYNTH_SPLIT),
    **CULTUREMERT_READERS,  # fma-medium, lyra, makam, saraga-*, dunya-*
    **EFFICIENT_READERS,  # mtg-jamendo-*, vocalset-*, giantsteps-mtg-key, emomusic
}
