"""Beats, downbeats and tempo, from melos's DSP tracker (default) or Beat This! (a local checkpoint).

Backends, chosen by a string:

    "librosa"          `tempo.dsp_beats`: librosa's dynamic-programming tracker run at each strong
                       periodicity of a band-wise onset envelope, the metrical level picked by how
                       its beats fit the kick and snare accents, beats kept to the end of the music;
                       no weights. It has no downbeats, so the bar phase is a heuristic
                       (`bar_phase_downbeats`).
    "beat-this:PATH"   Beat This! (Foscarin et al., ISMIR 2024) from a checkpoint file PATH the
                       user downloaded; needs the `beat-this` package. melos never downloads
                       weights.

Either way the beats are then snapped to a refined onset when one lies within 40 ms, so a beat
transient lands on the attack rather than on the tracker's frame grid.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .beat_this_backend import BEAT_THIS_NEEDS, beat_this_beats
from .tempo import dsp_beats


@dataclass
class Beats:
    times: np.ndarray  # seconds, increasing
    downbeats: np.ndarray  # seconds, a subset of `times`
    tempo: float  # beats per minute, 0 when no beats were found
    backend: str  # what produced them, for Analysis.backends


def parse_beats(spec: str) -> tuple[str, Path | None]:
    """Split a `beats=` setting into (backend, checkpoint path); raise ValueError if malformed.

    Checks that the path exists, then that the package is installed, so a typo is reported
    before any audio is read.
    """
    name, _, path = spec.partition(":")
    if name == "librosa" and not path:
        return "librosa", None
    if name == "beat-this":
        if not path:
            raise ValueError("beats=beat-this needs a checkpoint path: beats=beat-this:PATH (a file you downloaded; "
                             "melos never downloads weights)")
        if not Path(path).is_file():
            raise FileNotFoundError(f"beats=beat-this:PATH: no checkpoint file at {path}")
        if importlib.util.find_spec("beat_this") is None:
            raise ValueError(BEAT_THIS_NEEDS)
        return "beat-this", Path(path)
    raise ValueError(f"unknown beats backend {spec!r}; choose 'librosa' or 'beat-this:PATH'")


def track_beats(spec: str, audio: np.ndarray, sample_rate: int, novelty: np.ndarray, low_novelty: np.ndarray,
                frame_rate: float, onsets: np.ndarray) -> Beats:
    """Beats of a recording with the backend `spec` names (see the module docstring).

    Args:
        spec: "librosa" or "beat-this:PATH".
        audio: mono waveform [N] (read by both trackers).
        sample_rate: its rate in Hz.
        novelty: onset curve on the analysis frame grid [T], for the bar phase.
        low_novelty: onset curve of the 40-400 Hz band [T], for the bar phase.
        frame_rate: frames per second of both curves.
        onsets: refined onset times (s) the beats are snapped to.
    """
    backend, checkpoint = parse_beats(spec)
    if backend == "beat-this":
        found = beat_this_beats(audio, sample_rate, checkpoint)
        beats = snap_to_onsets(found.beats, onsets)
        downbeats = snap_to_onsets(found.downbeats, onsets)  # the same moves: still a subset of the beats
        return Beats(beats, downbeats, tempo_of(beats), f"beat-this:{checkpoint.name}")
    found = dsp_beats(audio, sample_rate)
    beats = snap_to_onsets(found.times, onsets)
    downbeats = bar_phase_downbeats(beats, low_novelty, novelty, frame_rate)
    return Beats(beats, downbeats, tempo_of(beats) if len(beats) > 1 else found.tempo, "librosa")


def snap_to_onsets(beats: np.ndarray, onsets: np.ndarray, tolerance: float = 0.04) -> np.ndarray:
    """Move each beat to the nearest onset within `tolerance` seconds; others stay where they are."""
    beats = np.asarray(beats, dtype=float)
    if len(beats) == 0 or len(onsets) == 0:
        return beats
    right = np.clip(np.searchsorted(onsets, beats), 1, len(onsets) - 1) if len(onsets) > 1 else np.zeros(len(beats), int)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(onsets[left] - beats) <= np.abs(onsets[right] - beats), onsets[left], onsets[right])
    snapped = np.where(np.abs(nearest - beats) <= tolerance, nearest, beats)
    return np.unique(snapped)  # two beats snapped to one onset become one


def tempo_of(beats: np.ndarray) -> float:
    """Tempo (BPM) from the median inter-beat interval; 0 with fewer than two beats."""
    if len(beats) < 2:
        return 0.0
    return float(60.0 / np.median(np.diff(beats)))


def bar_phase_downbeats(beats: np.ndarray, low_novelty: np.ndarray, novelty: np.ndarray, frame_rate: float,
                        beats_per_bar: int = 4) -> np.ndarray:
    """Every `beats_per_bar`-th beat, starting at the phase whose beats have the most low-band onset
    strength (ties: the most full-band strength, then the earliest phase).

    A heuristic, not a downbeat tracker: in much popular music the kick drum and the bass land on
    the first beat of the bar, but the metre is assumed (4 unless told) and a pickup, a metre change
    or a bar that starts on a quiet beat fools it.
    """
    if len(beats) == 0:
        return np.zeros(0)
    frames = np.clip(np.round(beats * frame_rate).astype(int), 0, len(novelty) - 1)
    reach = max(1, round(0.03 * frame_rate))  # a beat on the grid may sit a frame or two off its peak

    def strength(curve: np.ndarray) -> np.ndarray:
        return np.array([curve[max(f - reach, 0): f + reach + 1].max() for f in frames])

    low, full = strength(low_novelty), strength(novelty)
    phases = range(min(beats_per_bar, len(beats)))
    best = max(phases, key=lambda p: (low[p::beats_per_bar].mean(), full[p::beats_per_bar].mean(), -p))
    return beats[best::beats_per_bar]
