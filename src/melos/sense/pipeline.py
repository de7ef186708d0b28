"""`melos sense`: haptic tracks for every file of a folder, a manifest or one file.

Per input, `OUT/<relative path of the input>/` appears complete or not at all (written in a
temporary folder, then renamed) and holds:

    analysis.json            what was read from the music (melos.sense.analysis.Analysis)
    haptics.ahap             Apple Core Haptics pattern (iPhone)
    haptics.android.json     Android VibrationEffect.createWaveform timings and amplitudes, and under
                             "onoff" the off/on timings for vibrators without amplitude control
    haptics.ogg              the audio plus haptic PCM channel(s), tagged ANDROID_HAPTIC=<n>
    haptics.haptic           Meta Haptics Studio / Lofelt v1 clip
    drive.wav                8 kHz drive signal for a voice-coil actuator (carrier at its resonance)
    sense.html               (format html) an offline page: the audio with every lane, in sync
    video.mp4                (format mp4) H.264 + AAC: the scrolling score and an audio-reactive panel
    track.png                with `plot`: the waveform with the haptic layers under it

With `model` (a melos encoder), analysis.json also lists the sections the encoder's embeddings
separate, and each section's haptics are scaled by its intensity (melos.sense.sections). With
`probe` too (a file `melos probe` saved for that encoder), each section lists the probe's tags
with their probabilities (melos.sense.tags).

plus one row per input in OUT/index.jsonl. A bad file is recorded with its reason and the run
goes on; `skip_existing` keeps inputs an earlier run finished.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..audio import AudioError, info, load
from ..data.sources import AudioSource, list_sources
from ..embedding.store import Index, IndexRow, RunSummary
from ..evaluation.saved_probe import SavedProbe
from ..models import Encoder, load_encoder
from ..utils.atomic import atomic_dir, write_text
from . import export
from .analysis import Analysis, analyze
from .mapping import to_track
from .plot import plot_track
from .sections import sections
from .tags import load_probe, section_tags
from .track import HapticTrack

FORMATS = ("ahap", "android", "ogg", "haptic", "wav", "html", "mp4")
DEFAULT_FORMATS = ("ahap", "android", "ogg", "haptic", "wav")  # the haptic ones: fast, for every run


def _writers(carrier_hz: float) -> dict[str, tuple[str, Callable]]:
    """Format -> (file name, writer(folder file, audio [C, N], sample_rate, track, analysis, title))."""
    def html(path: Path, audio: np.ndarray, sr: int, track: HapticTrack, analysis: Analysis, title: str) -> None:
        from .export.html import write_html
        write_html(path, audio, sr, analysis, track, title=title)

    def mp4(path: Path, audio: np.ndarray, sr: int, track: HapticTrack, analysis: Analysis, title: str) -> None:
        from .export.video import write_video
        write_video(path, audio, sr, analysis, track, title=title)

    return {
        "ahap": ("haptics.ahap", lambda path, audio, sr, track, *_: export.write_ahap(track, path)),
        "android": ("haptics.android.json", lambda path, audio, sr, track, *_: export.write_waveform(track, path)),
        "ogg": ("haptics.ogg", lambda path, audio, sr, track, *_: export.write_haptic_ogg(
            audio, sr, track, path, carrier_hz=carrier_hz)),
        "haptic": ("haptics.haptic", lambda path, audio, sr, track, *_: export.write_lofelt(track, path)),
        "wav": ("drive.wav", lambda path, audio, sr, track, *_: export.write_drive(track, path, carrier_hz=carrier_hz)),
        "html": ("sense.html", html),
        "mp4": ("video.mp4", mp4),
    }


def sense(input: str | Path | Sequence[AudioSource], out_dir: str | Path, *,
          formats: Sequence[str] = DEFAULT_FORMATS,
          preset: str = "default", beats: str = "librosa", stems: str = "hpss", min_gap: float = 0.08,
          carrier_hz: float = 170.0, plot: bool = False, skip_existing: bool = False, allow_truncated: bool = False,
          progress: bool = True, model: str | None = None, probe: str | Path | None = None) -> RunSummary:
    """Analyse every input, map it to a haptic track and export it in `formats` (see the module
    docstring); returns what was done and what failed. `model`: a melos encoder (preset, folder or
    file, see `melos.load_encoder`) for sections, loaded once for the whole run; `probe`: a probe
    file `melos probe` saved for that encoder, for per-section tags (needs `model`)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    if not 150 <= carrier_hz <= 250:
        raise ValueError(f"carrier_hz must be 150-250 Hz (a voice-coil actuator's resonance), got {carrier_hz:g}")
    if probe is not None and not model:
        raise ValueError(f"--probe {probe} needs --model: the encoder the probe was trained on")
    writers = {f: w for f, w in _writers(carrier_hz).items() if f in formats}
    encoder = load_encoder(model, device="cuda" if torch.cuda.is_available() else "cpu") if model else None
    tagger = load_probe(probe, encoder) if probe is not None and encoder is not None else None
    sources = list(input) if isinstance(input, (list, tuple)) else list_sources(input)
    out_dir = Path(out_dir)
    index = Index(out_dir, resume=skip_existing)
    summary = RunSummary(out_dir)
    start = time.perf_counter()
    try:
        for source in tqdm(sources, desc="sense", unit="file", disable=not progress):
            if skip_existing and index.done(str(source.path), out_dir):
                summary.n_skipped += 1
                continue
            try:
                duration = _one(source, out_dir, writers, preset, beats, stems, min_gap, plot, allow_truncated,
                                encoder, tagger)
            except (AudioError, ValueError) as err:
                reason = str(err) if str(source.path) in str(err) else f"{source.path}: {err}"
                summary.failed[str(source.path)] = reason
                index.add(IndexRow(str(source.path), "error", error=reason))
                continue
            summary.n_done += 1
            summary.audio_seconds += duration
            index.add(IndexRow(str(source.path), "ok", source.name, round(duration, 3)))
    finally:
        index.close()
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _one(source: AudioSource, out_dir: Path, writers: dict[str, tuple[str, Callable]], preset: str, beats: str,
         stems: str, min_gap: float, plot: bool, allow_truncated: bool, encoder: Encoder | None = None,
         probe: SavedProbe | None = None) -> float:
    """Analyse, map and export one file into OUT/<name>/; returns its duration in seconds."""
    rate = info(source.path, allow_truncated=allow_truncated).sample_rate
    audio = load(source.path, rate, mono=False, allow_truncated=allow_truncated).numpy()  # [C, N], native rate
    analysis = analyze(audio.mean(axis=0), rate, hop=0.01, min_gap=min_gap, beats=beats, stems=stems)
    if encoder is not None:
        analysis.sections = sections(audio, rate, encoder, analysis.rms, analysis.hop)
        if probe is not None:
            section_tags(audio, rate, encoder, probe, analysis.sections)
    track = to_track(analysis, preset)
    with atomic_dir(out_dir / source.name) as folder:
        write_text(folder / "analysis.json", json.dumps(analysis.to_json()) + "\n")
        for name, write in writers.values():
            write(folder / name, audio, rate, track, analysis, source.name)
        if plot:
            plot_track(audio.mean(axis=0), rate, analysis, track, folder / "track.png", title=source.name)
    return analysis.duration


def track_of(path: str | Path, preset: str = "default", **options) -> tuple[Analysis, HapticTrack]:
    """The analysis and haptic track of one file, without writing anything (for notebooks)."""
    rate = info(path).sample_rate
    audio = load(path, rate).numpy()
    analysis = analyze(audio, rate, **options)
    return analysis, to_track(analysis, preset)

