"""From a score to audio: one dry stem per instrument at its mix level, then the room, the noise
floor and the final level.

Three random streams per clip, all from its seed: composition (`compose`), synthesis (stems) and
mixing, so labels and stems stay the same whatever the mix does.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from .dsp import convolve, room, seconds_to_samples
from .instruments import render_pitched
from .percussion import render_hits
from .score import Score
from .traditions import TRADITIONS, compose

STEM_RMS = 0.1  # a stem at 0 dB


def _stream(tradition: str, seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, TRADITIONS.index(tradition), stream])


def render_score(score: Score, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Dry stems by instrument, each scaled to its part's level (RMS 0.1 at 0 dB), float32."""
    n = seconds_to_samples(score.seconds)
    stems = {}
    for part in score.parts:
        if part.hits:
            y = render_hits(part, score.tonic_hz, n, rng)
        else:
            y = render_pitched(part, score.tonic_hz, n, rng)
        rms = np.sqrt(np.mean(y ** 2))
        stems[part.instrument] = (y * STEM_RMS * 10 ** (part.level_db / 20) / max(rms, 1e-9)).astype(np.float32)
    return stems


def mix(stems: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Sum, a small room (RT60 0.3-0.9 s, 10-30% wet), a noise floor 30-40 dB below the music,
    and a peak of -3 dBFS varied from -6 to +2 dB (so nothing clips)."""
    x = np.sum([s.astype(np.float64) for s in stems.values()], axis=0)
    wet = rng.uniform(0.1, 0.3)
    x = (1 - wet) * x + wet * convolve(x, room(rng, rng.uniform(0.3, 0.9)))
    snr_db = rng.uniform(30, 40)
    white = rng.standard_normal(x.size)
    floor = 0.6 * white + lfilter([0.05], [1, -0.95], white) * 4  # hiss plus a low rumble
    x = x + floor / np.sqrt(np.mean(floor ** 2)) * np.sqrt(np.mean(x ** 2)) * 10 ** (-snr_db / 20)
    peak_db = -3 + rng.uniform(-6, 2)
    return (x * 10 ** (peak_db / 20) / np.abs(x).max()).astype(np.float32)


def render_stems(tradition: str, seed: int, seconds: float = 5.0) -> tuple[dict[str, np.ndarray], dict]:
    """Dry stems of clip `seed` by instrument, and its labels (see `Score.labels`)."""
    score = compose(tradition, seed, seconds)
    return render_score(score, _stream(tradition, seed, 1)), score.labels()


def render_clip(tradition: str, seed: int, seconds: float = 5.0) -> tuple[np.ndarray, dict]:
    """Clip `seed` of `tradition`: mono float32 audio at SAMPLE_RATE, exactly `seconds` long, and labels."""
    stems, labels = render_stems(tradition, seed, seconds)
    return mix(stems, _stream(tradition, seed, 2)), labels


