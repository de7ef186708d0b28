"""Chords per frame and the key, from a chromagram (DSP, no model).

    audio -> 12 kHz -> CQT chroma (hop CHROMA_HOP, ~0.107 s) ─┬─ cosine with 24 triad templates + "N" ─┐
                                                              │      Viterbi (self-transition bias) <─┘
                                                              │        -> segments "C:maj", "A:min", "N"
                                                              └─ energy-weighted mean chroma + the chords' tones
                                                                   -> correlation with 24 Krumhansl-Kessler
                                                                      profiles -> key, confidence

Labels are Harte syntax as `mir_eval.chord` reads it; keys are "C major" / "A minor" as
`mir_eval.key` reads them. Only major and minor triads are recognised: a seventh chord reads as
its triad, which is what the majmin and root scores of `mir_eval.chord.evaluate` measure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import librosa
import numpy as np
import soxr

CHROMA_RATE = 12000  # Hz: chroma needs only the 7 octaves from C1 (33 Hz) to ~4 kHz
CHROMA_HOP = 1280  # samples (0.107 s at 12 kHz); the CQT needs a multiple of 2^(octaves - 1) = 64
PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SILENCE_DB = -60.0  # dBFS: a frame whose RMS is below this (or 50 dB under the loudest) is "N"
N_WEIGHT = 0.8  # the no-chord score is this x the chroma's cosine with a flat chroma (0.9 read 15-25 %
# of real tracks as N; drum-led music still reads mostly N)
TEMPERATURE = 0.05  # emission = exp(cosine / TEMPERATURE): a softmax over the 25 states
SELF_TRANSITION = 0.9  # probability of staying on a chord from one frame to the next
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass
class ChordSegment:
    start: float  # seconds
    end: float
    label: str  # Harte: "C:maj", "A:min" or "N"


@dataclass
class Harmony:
    """Chords and key of one recording.

    chords: consecutive segments from 0 to the end, neighbours with different labels.
    key: "C major" ... "B minor" ("" when the audio is silent); key_confidence: the Pearson
        correlation (0..1, clipped) of the track's pitch-class profile with that key's.
    hop: the chroma frame hop (s) the segment boundaries are quantised to (before any snapping).
    """

    chords: list[ChordSegment] = field(default_factory=list)
    key: str = ""
    key_confidence: float = 0.0
    hop: float = CHROMA_HOP / CHROMA_RATE

    @property
    def changes(self) -> np.ndarray:
        """Times (s) where the label changes (every segment start but the first)."""
        return np.array([s.start for s in self.chords[1:]])


def chord_labels() -> list[str]:
    """The 25 states: 12 major triads, 12 minor triads, then "N"."""
    return [f"{p}:maj" for p in PITCHES] + [f"{p}:min" for p in PITCHES] + ["N"]


def chord_templates() -> np.ndarray:
    """Unit-norm pitch-class templates of the 24 triads, [24, 12] (order of `chord_labels`)."""
    templates = np.zeros((24, 12))
    for root in range(12):
        templates[root, [root, (root + 4) % 12, (root + 7) % 12]] = 1.0
        templates[12 + root, [root, (root + 3) % 12, (root + 7) % 12]] = 1.0
    return templates / np.linalg.norm(templates, axis=1, keepdims=True)


def chroma(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """CQT chroma [12, T] (columns unit-norm, zero where silent) and frame RMS in dBFS [T], at
    frame k = time k * CHROMA_HOP / CHROMA_RATE, from mono audio [N]."""
    x = soxr.resample(np.asarray(audio, dtype=np.float64), sample_rate, CHROMA_RATE) if sample_rate != CHROMA_RATE \
        else np.asarray(audio, dtype=np.float64)
    if len(x) < CHROMA_HOP:
        x = np.pad(x, (0, CHROMA_HOP - len(x)))
    silent = np.abs(x).max() < 10 ** (SILENCE_DB / 20)  # no pitches to estimate the tuning from: assume A440
    c = librosa.feature.chroma_cqt(y=x, sr=CHROMA_RATE, hop_length=CHROMA_HOP, norm=None, threshold=0.0,
                                   tuning=0.0 if silent else None)
    rms = librosa.feature.rms(y=x, frame_length=2 * CHROMA_HOP, hop_length=CHROMA_HOP)[0]
    n = min(c.shape[1], len(rms))
    c, rms = c[:, :n], rms[:n]
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    norm = np.linalg.norm(c, axis=0)
    c = np.where(norm > 0, c / np.maximum(norm, 1e-20), 0.0)
    return c, db


def chord_scores(c: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Per frame the score (cosine, 0..1) of each of the 25 states, [25, T]: the triads' cosine
    with the chroma, "N" N_WEIGHT x its cosine with a flat chroma (noise is flat, a chord is not);
    silent frames score 1 for "N" and 0 for every chord."""
    scores = np.vstack([chord_templates() @ c, N_WEIGHT * c.sum(axis=0, keepdims=True) / np.sqrt(12)])
    silent = (db < SILENCE_DB) | (db < (db.max() if len(db) else 0.0) - 50.0) | (np.abs(c).sum(axis=0) == 0)
    scores[:, silent] = 0.0
    scores[24, silent] = 1.0
    return scores


def decode(scores: np.ndarray, self_transition: float = SELF_TRANSITION) -> np.ndarray:
    """The most likely state per frame [T] (indices into `chord_labels`) by Viterbi decoding, the
    emissions a softmax of the scores and every change equally likely."""
    emission = np.exp((scores - scores.max(axis=0, keepdims=True)) / TEMPERATURE)
    emission /= emission.sum(axis=0, keepdims=True)
    transition = librosa.sequence.transition_loop(scores.shape[0], self_transition)
    return librosa.sequence.viterbi(emission, transition)


def estimate_key(c: np.ndarray, db: np.ndarray, states: np.ndarray) -> tuple[str, float]:
    """The key ("C major" ...) and its correlation with the track's pitch-class profile: the
    energy-weighted mean chroma plus the tones of the decoded chords, each summing to 1. The
    chords' tones add the thirds that a chroma dominated by bass roots and fifths under-weights
    (on generated progressions the sum finds more keys than either alone)."""
    weight = np.clip(db - SILENCE_DB, 0.0, None)
    tones = np.vstack([chord_templates() > 0, np.zeros((1, 12), bool)])[states].T @ weight  # [12]
    if not weight.any():
        return "", 0.0
    profile = (c @ weight) / max(float((c @ weight).sum()), 1e-20) + tones / max(float(tones.sum()), 1e-20)
    best, name = -2.0, ""
    for mode, kk in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(profile, np.roll(kk, tonic))[0, 1])
            if r > best:
                best, name = r, f"{PITCHES[tonic]} {mode}"
    return name, float(np.clip(best, 0.0, 1.0))


def segments(states: np.ndarray, hop: float, duration: float) -> list[ChordSegment]:
    """Runs of equal state as segments from 0 to `duration`, boundaries at frame midpoints."""
    labels = chord_labels()
    out: list[ChordSegment] = []
    for k, state in enumerate(states):
        if out and out[-1].label == labels[state]:
            continue
        start = max(0.0, (k - 0.5) * hop) if k else 0.0
        if out:
            out[-1].end = start
        out.append(ChordSegment(start, duration, labels[state]))
    return [s for s in out if s.end > s.start] or [ChordSegment(0.0, duration, "N")]


def snap(chords: list[ChordSegment], onsets: np.ndarray, tolerance: float) -> list[ChordSegment]:
    """`chords` with each change moved to the nearest onset within `tolerance` seconds: chords
    are struck, and the chroma grid is coarse (~0.1 s) next to the onsets' (~0.01 s)."""
    onsets = np.asarray(onsets, dtype=float)
    if len(onsets) == 0 or len(chords) < 2:
        return chords
    out = [ChordSegment(s.start, s.end, s.label) for s in chords]
    for prev, seg in zip(out, out[1:]):
        nearest = onsets[np.argmin(np.abs(onsets - seg.start))]
        if abs(nearest - seg.start) <= tolerance and prev.start < nearest < seg.end:
            prev.end = seg.start = float(nearest)
    return out


def analyze_harmony(audio: np.ndarray, sample_rate: int, onsets: np.ndarray | None = None) -> Harmony:
    """Chords and key of mono audio [N] (see the module docstring).

    Args:
        audio: mono waveform [N].
        sample_rate: its rate in Hz.
        onsets: optional onset times (s); chord changes within one chroma hop of one move to it.
    """
    c, db = chroma(audio, sample_rate)
    hop = CHROMA_HOP / CHROMA_RATE
    duration = len(audio) / sample_rate
    states = decode(chord_scores(c, db))
    chords = segments(states, hop, duration)
    if onsets is not None:
        chords = snap(chords, onsets, hop)
    key, confidence = estimate_key(c, db, states)
    return Harmony(chords, key, confidence, hop)
