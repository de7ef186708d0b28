"""Drum kits: each stroke is a struck membrane (damped, gliding partials) plus a filtered noise
burst, rendered once per clip and laid down at every hit with its velocity.

Kits: drums (kick/snare/hat), bendir (frame drum with jingles) and kudum (paired kettledrums) for
makam, toumbeleki (goblet drum) and daouli (bass drum) for greek, and tabla, whose right drum is
tuned to the tonic; tabla hits are bols, each a combination of right (dayan) and left (bayan) strokes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dsp import band_noise, decay, membrane, seconds_to_samples
from .score import Part


@dataclass(frozen=True)
class Stroke:
    f0: float  # Hz, or a multiple of the tonic for tuned drums
    decay_s: float
    modes: tuple[tuple[float, float, float], ...] = ((1.0, 1.0, 1.0),)
    glide: float = 0.0  # starting pitch offset (fraction of f0) that settles within glide_s
    glide_s: float = 0.03
    noise: float = 0.0
    band: tuple[float, float] = (1000.0, 8000.0)
    noise_s: float = 0.02
    tone: float = 1.0
    seconds: float = 0.5


_FRAME = ((1.0, 1.0, 1.0), (1.59, 0.4, 0.6), (2.14, 0.25, 0.5))
_KETTLE = ((1.0, 1.0, 1.0), (1.5, 0.5, 0.7), (2.0, 0.3, 0.5))
_DAYAN = ((1.0, 0.6, 1.0), (2.0, 1.0, 0.7), (3.0, 0.7, 0.5), (4.0, 0.4, 0.4), (5.0, 0.2, 0.3))

KITS: dict[str, dict[str, Stroke]] = {
    "drums": {
        "kick": Stroke(55, 0.25, glide=1.5, glide_s=0.02, noise=0.3, band=(1000, 6000), noise_s=0.005),
        "snare": Stroke(185, 0.08, ((1.0, 1.0, 1.0), (1.6, 0.5, 0.8)), noise=1.5, band=(1500, 9000), noise_s=0.12,
                        seconds=0.35),
        "hat": Stroke(0, 0.01, tone=0.0, noise=1.0, band=(6000, 11000), noise_s=0.03, seconds=0.12),
    },
    "bendir": {
        "dum": Stroke(70, 0.35, _FRAME, glide=0.3, noise=0.4, band=(2000, 8000), noise_s=0.15, seconds=0.7),
        "tek": Stroke(350, 0.04, ((1.0, 1.0, 1.0), (1.5, 0.6, 1.0)), noise=1.0, band=(2000, 7000), noise_s=0.03,
                      seconds=0.2),
        "ka": Stroke(420, 0.03, noise=1.0, band=(2500, 8000), noise_s=0.025, seconds=0.2),
    },
    "kudum": {
        "dum": Stroke(140, 0.25, _KETTLE, noise=0.5, band=(300, 3000), noise_s=0.01),
        "tek": Stroke(330, 0.15, _KETTLE, noise=0.5, band=(800, 5000), noise_s=0.01, seconds=0.3),
        "ka": Stroke(330, 0.05, _KETTLE, noise=0.8, band=(800, 5000), noise_s=0.01, seconds=0.2),
    },
    "toumbeleki": {
        "dum": Stroke(95, 0.3, _FRAME, glide=0.2, noise=0.2, band=(100, 1500), noise_s=0.02, seconds=0.6),
        "tek": Stroke(700, 0.03, noise=1.2, band=(2500, 9000), noise_s=0.025, seconds=0.2),
        "ka": Stroke(900, 0.02, noise=1.2, band=(2000, 8000), noise_s=0.02, seconds=0.15),
    },
    "daouli": {
        "dum": Stroke(60, 0.45, ((1.0, 1.0, 1.0), (1.6, 0.5, 0.6)), noise=0.6, band=(80, 2000), noise_s=0.05,
                      seconds=0.8),
        "tek": Stroke(250, 0.02, noise=1.5, band=(1500, 6000), noise_s=0.02, seconds=0.15),
        "ka": Stroke(300, 0.015, noise=1.5, band=(1500, 6000), noise_s=0.015, seconds=0.12),
    },
    "tabla": {  # f0 below 10 is a multiple of the tonic
        "na": Stroke(2.0, 0.25, _DAYAN, noise=0.4, band=(2000, 8000), noise_s=0.005),
        "tin": Stroke(2.0, 0.4, ((1.0, 1.0, 1.0), (2.0, 0.3, 0.6), (3.0, 0.15, 0.4)), seconds=0.6),
        "te": Stroke(2.0, 0.02, tone=0.2, noise=1.0, band=(1000, 5000), noise_s=0.015, seconds=0.1),
        "ge": Stroke(95, 0.45, ((1.0, 1.0, 1.0), (2.0, 0.2, 0.5)), glide=-0.15, glide_s=0.1, seconds=0.7),
        "ke": Stroke(110, 0.02, noise=1.0, band=(150, 1500), noise_s=0.02, seconds=0.1),
    },
}

BOLS = {"dha": ("na", "ge"), "dhin": ("tin", "ge"), "dhi": ("tin", "ge"), "ta": ("na",), "na": ("na",),
        "tin": ("tin",), "ti": ("te",), "te": ("te",), "ra": ("te",), "ki": ("ke",), "ge": ("ge",), "ke": ("ke",)}


def _stroke(s: Stroke, tonic: float, tune: float, rng: np.random.Generator) -> np.ndarray:
    n = seconds_to_samples(s.seconds)
    f0 = s.f0 * tonic if 0 < s.f0 < 10 else s.f0 * tune
    y = s.tone * membrane(f0, n, s.decay_s, s.modes, s.glide, s.glide_s) if s.tone else np.zeros(n)
    if s.noise:
        y = y + s.noise * band_noise(rng, n, *s.band) * decay(n, s.noise_s)
    y[:24] *= np.linspace(0, 1, 24)  # 1 ms attack: no click from a jump at the onset
    return y / (np.abs(y).max() + 1e-12)


def render_hits(part: Part, tonic: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """A percussion part's dry stem, `n` samples. The kit is retuned by up to +-15% per clip."""
    kit = KITS[part.instrument]
    tune = 2 ** rng.uniform(-0.2, 0.2)
    sounds: dict[str, np.ndarray] = {}
    out = np.zeros(n)
    for hit in part.hits:
        if hit.stroke not in sounds:
            strokes = BOLS[hit.stroke] if part.instrument == "tabla" else (hit.stroke,)
            layers = [_stroke(kit[s], tonic, tune, rng) for s in strokes]
            size = max(y.size for y in layers)
            sounds[hit.stroke] = sum(np.pad(y, (0, size - y.size)) for y in layers) / len(layers) ** 0.5
        s = seconds_to_samples(hit.onset)
        y = sounds[hit.stroke][:n - s]
        out[s:s + y.size] += hit.velocity * rng.uniform(0.92, 1.08) * y
    return out
