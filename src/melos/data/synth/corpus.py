"""Writing a synthetic corpus: audio files per tradition and a JSONL manifest with splits and labels.

Clip i of tradition T in a corpus with seed S is `render_clip(T, clip_seed(S, T, i))`, a stable
hash, so the same arguments give byte-identical files on any run. Files are written to a temp
name and renamed, the manifest last, so an interrupted run leaves no half-written file; a rerun
skips the clips that already exist with the right length and only recomputes their labels.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from ...utils.atomic import atomic_file, write_text
from .dsp import SAMPLE_RATE, seconds_to_samples
from .render import render_clip
from .traditions import TRADITIONS, compose

SPLIT = {"train": 0.7, "valid": 0.15, "test": 0.15}


def clip_seed(seed: int, tradition: str, index: int) -> int:
    """A 63-bit seed for one clip from the corpus seed, its tradition and its index."""
    digest = hashlib.sha256(f"melos-synth/{seed}/{tradition}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def assign_splits(n: int, fractions: dict[str, float], seed: int, tradition: str) -> list[str]:
    """Exactly round(n x fraction) clips per split (train takes the rest), shuffled by a stable
    seed, so every tradition is split the same way at any corpus size."""
    total = sum(fractions.values())
    counts = {name: int(round(n * f / total)) for name, f in fractions.items() if name != "train"}
    labels = [name for name, count in counts.items() for _ in range(count)][:n]
    labels += ["train"] * (n - len(labels))
    order = np.random.default_rng(clip_seed(seed, tradition, -1)).permutation(n)
    return [labels[i] for i in order]


def _write_audio(path: Path, tradition: str, seed: int, seconds: float) -> None:
    audio, _ = render_clip(tradition, seed, seconds)
    with atomic_file(path) as tmp:
        sf.write(tmp, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def _complete(path: Path, seconds: float) -> bool:
    try:
        return sf.info(path).frames == seconds_to_samples(seconds)
    except RuntimeError:  # missing or unreadable (soundfile errors are RuntimeErrors)
        return False


def _run(jobs: list[tuple[Path, str, int, float]], workers: int, progress: bool) -> None:
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    if workers <= 1 or len(jobs) < 4:
        for job in jobs:
            _write_audio(*job)
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_write_audio, *zip(*jobs), chunksize=max(1, len(jobs) // (8 * workers))):
                bar.update()
    bar.close()


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write_corpus(out: str | Path, clips_per_tradition: dict[str, int] | int, seconds: float = 5.0, seed: int = 0,
                 split: dict[str, float] | None = None, progress: bool = True, workers: int | None = None) -> Path:
    """Render the corpus into `out` and return the path of `out/manifest.jsonl`.

    Files: `out/<tradition>/<tradition>-<i>.flac` (16-bit, 24 kHz, mono). Manifest rows:
    `path` (relative to `out`), `split` (train/valid/test, default 70/15/15 per tradition),
    `culture` (the tradition), `source` ("melos-synth"), `duration`, `seed` (the clip's seed for
    `render_clip`/`render_stems`), `labels` (mode, metre and instruments, for multi-label
    tagging) and `meta` (the full label dict). `workers` defaults to the available cores.
    """
    out = Path(out)
    counts = clips_per_tradition
    if not isinstance(counts, dict):
        counts = dict.fromkeys(TRADITIONS, counts)
    unknown = set(counts) - set(TRADITIONS)
    if unknown:
        raise ValueError(f"unknown traditions {sorted(unknown)}; expected some of {TRADITIONS}")
    rows, jobs = [], []
    for tradition, n in counts.items():
        (out / tradition).mkdir(parents=True, exist_ok=True)
        for index, subset in enumerate(assign_splits(n, split or SPLIT, seed, tradition)):
            clip = clip_seed(seed, tradition, index)
            path = out / tradition / f"{tradition}-{index}.flac"
            if not _complete(path, seconds):
                jobs.append((path, tradition, clip, seconds))
            meta = compose(tradition, clip, seconds).labels()
            rows.append({"path": str(path.relative_to(out)), "split": subset, "culture": tradition,
                         "source": "melos-synth", "duration": seconds, "seed": clip,
                         "labels": [meta["mode"], meta["metre"], *meta["instruments"]], "meta": meta})
    _run(jobs, workers or _cores(), progress)
    return write_text(out / "manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
