"""Chord progressions with known chords and key: references for chord and key estimation.

Each chord is a bass on its root (octave 2) and its triad voiced over octaves 3-4, every tone a
few harmonic partials (1/k amplitudes) under a short attack and an exponential decay, the chord
struck on every beat. Progressions are Roman-numeral patterns in a major or (harmonic) minor key,
some in inversion (the bass stays on the root, the upper voicing is rotated), optionally with
`drum_loop` mixed in. Labels are Harte syntax ("C:maj", "A:min"), keys "C major" / "A minor", as
`mir_eval` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .drum_loop import drum_loop
from .dsp import SAMPLE_RATE

PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# (semitones above the tonic, quality) per degree; minor keys use the harmonic minor's major V.
MAJOR_DEGREES = {"I": (0, "maj"), "ii": (2, "min"), "iii": (4, "min"), "IV": (5, "maj"), "V": (7, "maj"),
                 "vi": (9, "min")}
MINOR_DEGREES = {"i": (0, "min"), "iv": (5, "min"), "V": (7, "maj"), "VI": (8, "maj"), "III": (3, "maj"),
                 "VII": (10, "maj")}
MAJOR_PATTERNS = (("I", "V", "vi", "IV"), ("I", "IV", "V", "I"), ("I", "vi", "ii", "V"), ("I", "iii", "IV", "V"))
MINOR_PATTERNS = (("i", "iv", "V", "i"), ("i", "VI", "III", "V"), ("i", "VII", "VI", "V"), ("i", "iv", "VI", "V"))
PARTIALS = (1.0, 0.5, 0.33, 0.25)  # harmonic amplitudes: a soft, organ-like tone


@dataclass
class ChordProgression:
    audio: np.ndarray  # [N] at sample_rate, peak 0.8
    sample_rate: int
    intervals: np.ndarray  # [K, 2] chord start/end times (s), contiguous from 0 to the end
    labels: list[str]  # K Harte labels
    key: str  # "C major" / "A minor"
    bpm: float


def _tone(freq: float, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    tone = sum(a * np.sin(2 * np.pi * k * freq * t) for k, a in enumerate(PARTIALS, 1) if k * freq < SAMPLE_RATE / 2)
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t / 0.8)
    return tone * envelope


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def chord_progression(seed: int = 0, tonic: int | None = None, mode: str | None = None, bpm: float | None = None,
                      n_bars: int = 4, beats_per_chord: int = 4, drums: bool = False) -> ChordProgression:
    """One progression, one chord per `beats_per_chord` beats, the pattern repeated over `n_bars`.

    Args:
        seed: chooses what is not given (tonic, mode, tempo, pattern, inversions, drum noise).
        tonic: pitch class 0-11 (C = 0); mode: "major" or "minor".
        bpm: tempo (quarter notes per minute), 80-140 when chosen.
        n_bars: number of chords (the 4-chord pattern repeats).
        drums: mix `drum_loop` at the same tempo in, its peak 0.6 x the chords'.
    """
    rng = np.random.default_rng(seed)
    tonic = int(rng.integers(12)) if tonic is None else tonic % 12
    mode = ("major", "minor")[int(rng.integers(2))] if mode is None else mode
    bpm = float(rng.uniform(80, 140)) if bpm is None else float(bpm)
    degrees, patterns = (MAJOR_DEGREES, MAJOR_PATTERNS) if mode == "major" else (MINOR_DEGREES, MINOR_PATTERNS)
    pattern = patterns[int(rng.integers(len(patterns)))]
    beat = 60.0 / bpm
    chord_s = beats_per_chord * beat
    n = round(n_bars * chord_s * SAMPLE_RATE)
    audio = np.zeros(n)
    labels = []
    for bar in range(n_bars):
        offset, quality = degrees[pattern[bar % len(pattern)]]
        root = (tonic + offset) % 12
        third = 4 if quality == "maj" else 3
        upper = [root, root + third, root + 7]
        inversion = int(rng.integers(3))  # 0: root position, 1: first, 2: second inversion of the upper voices
        upper = upper[inversion:] + [p + 12 for p in upper[:inversion]]
        notes = [36 + root] + [48 + p for p in upper] + [60 + upper[0]]  # bass C2-B2, voicing from C3
        gains = [0.8] + [0.5] * len(upper) + [0.3]
        start = bar * chord_s
        for b in range(beats_per_chord):
            s = round((start + b * beat) * SAMPLE_RATE)
            length = min(round(beat * SAMPLE_RATE), n - s)
            for note, gain in zip(notes, gains):
                audio[s:s + length] += gain * _tone(_midi_hz(note), length)
        labels.append(f"{PITCHES[root]}:{quality}")
    audio *= 0.8 / max(np.abs(audio).max(), 1e-12)
    if drums:
        loop = drum_loop(bpm=bpm, seconds=n / SAMPLE_RATE, seed=seed).audio[:n]
        audio[:len(loop)] += 0.6 * 0.8 * loop / max(np.abs(loop).max(), 1e-12)
        audio *= 0.8 / np.abs(audio).max()
    bounds = np.append(np.arange(n_bars) * chord_s, n / SAMPLE_RATE)  # shared boundaries: no overlaps
    return ChordProgression(audio, SAMPLE_RATE, np.stack([bounds[:-1], bounds[1:]], axis=1), labels, f"{PITCHES[tonic]} {mode}", bpm)


def chord_progressions(n: int, seed: int = 0, drums_every: int = 2, **kwargs) -> list[ChordProgression]:
    """`n` progressions (seeds seed..seed+n-1), every `drums_every`-th with drums (0: none)."""
    return [chord_progression(seed + i, drums=bool(drums_every) and i % drums_every == drums_every - 1, **kwargs)
            for i in range(n)]
