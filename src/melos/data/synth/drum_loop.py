"""A drum loop with every hit known to the sample: the test bench for what a body feels.

One bar of 4/4 in sixteenths, repeated:

    beat      1 . & . 2 . & . 3 . & . 4 . & .
    kick      x . . . . . . . x . x . . . . .     60 Hz sine, pitch dropping from 150 Hz in ~15 ms
    snare     . . . . x . . . . . . . x . . .     noise band-passed to 1.5-9 kHz + a 190 Hz body
    hat       . . x . . . x . . . . . . . x .     noise band-passed to 6-11 kHz, 30 ms

No two instruments strike together, so each hit is found (or missed) on its own merits, and
the off-beat hats and the syncopated kick tempt a tracker to double or halve the tempo.

The kick's level is set in dB against the snare (whose peak is `snare_peak`), which is how a
mix buries a kick under a snare; `kick_db=-18` is a kick a listener still hears clearly. The
quarter notes are the beat: the tempo is `bpm`, not its half (kick to kick) or double (hats).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dsp import SAMPLE_RATE, band_noise, decay

INSTRUMENTS = ("kick", "snare", "hat")


@dataclass
class DrumLoop:
    audio: np.ndarray  # float32 mono [N] at `sample_rate`
    sample_rate: int
    hits: dict[str, np.ndarray]  # instrument -> hit times (s), increasing
    beats: np.ndarray  # the quarter notes (s)
    downbeats: np.ndarray  # the first beat of each bar (s)
    bpm: float


def _kick(n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    f = 60.0 + 90.0 * np.exp(-t / 0.015)  # a short pitch drop, as a struck kick membrane
    return np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * np.exp(-t / 0.18)


def _snare(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    body = 0.4 * np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.04)
    return band_noise(rng, n, 1500.0, 9000.0) * decay(n, 0.06) + body


def _hat(n: int, rng: np.random.Generator) -> np.ndarray:
    return band_noise(rng, n, 6000.0, 11000.0) * decay(n, 0.012)


def _faded(sound: np.ndarray, fraction: float = 0.25) -> np.ndarray:
    """`sound` with a raised-cosine fade over its last `fraction`: a sound cut off mid-decay would
    end in a click, an onset that is not a hit."""
    n = max(1, round(fraction * len(sound)))
    fade = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, n + 1) / n)
    return np.concatenate([sound[:-n], sound[-n:] * fade])


def drum_loop(bpm: float = 120.0, seconds: float = 8.0, kick_db: float = 0.0, hat_db: float = -6.0,
              snare_peak: float = 0.9, seed: int = 0) -> DrumLoop:
    """Render the loop (see the module docstring) at 24 kHz, with its hits, beats and downbeats.

    Args:
        bpm: quarter notes per minute.
        seconds: length; hits are laid down while they start inside it.
        kick_db, hat_db: peak level of the kick and the hat relative to the snare's, in dB.
        snare_peak: the snare's peak amplitude (0.9: nearly full scale).
        seed: the noise of the snares and hats.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    beat = 60.0 / bpm
    beats = np.arange(0.0, seconds - 1e-9, beat)
    bars = np.arange(0.0, seconds - 1e-9, 4 * beat)
    pattern = {"kick": (0, 8, 10), "snare": (4, 12), "hat": (2, 6, 14)}  # sixteenths into the bar
    hits = {}
    for name, steps in pattern.items():
        times = (bars[:, None] + np.asarray(steps) * beat / 4).ravel()
        hits[name] = np.sort(times[times < seconds - 1e-9])
    sounds = {"kick": _kick(round(0.4 * SAMPLE_RATE)),
              "snare": _snare(round(0.25 * SAMPLE_RATE), rng), "hat": _hat(round(0.03 * SAMPLE_RATE), rng)}
    peaks = {"snare": snare_peak, "kick": snare_peak * 10 ** (kick_db / 20), "hat": snare_peak * 10 ** (hat_db / 20)}
    audio = np.zeros(n)
    for name, times in hits.items():
        sound = _faded(sounds[name]) / np.abs(sounds[name]).max() * peaks[name]
        for t in times:
            start = round(t * SAMPLE_RATE)
            piece = sound[:n - start]
            audio[start:start + len(piece)] += piece
    peak = np.abs(audio).max()
    if peak > 1:  # hits that coincide may sum past full scale
        audio /= peak
    return DrumLoop(audio.astype(np.float32), SAMPLE_RATE, hits, beats, bars, float(bpm))
