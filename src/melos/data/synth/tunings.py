"""Pitch systems and modes: 12-tone equal temperament, 53-comma Holdrian makams and just-intonation ragas.

A `Mode` is one octave of cents above its tonic (ascending, starting at 0) plus the degrees a melody
leans on. Melodies are written as walks over degree indices; `Mode.cents_of` turns an index (which
may leave the octave) into cents, so every tradition composes the same way and differs only in the
numbers below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate

COMMA = 1200 / 53  # Holdrian comma, the unit of Arel-Ezgi-Uzdilek (AEU) makam theory: 22.64 cents


def ratio_cents(ratio: float) -> float:
    return 1200 * math.log2(ratio)


@dataclass(frozen=True)
class Mode:
    """A scale with its melodic centres. Degrees are 0-based indices into `cents`."""

    name: str  # "<tradition>/<mode>", the label a clip carries
    cents: tuple[float, ...]  # one octave, ascending from 0
    dominant: int  # the second centre: V in western, güçlü in makam, vadi in raga
    emphasis: tuple[int, ...] = ()  # further important degrees (samvadi, ...)
    oscillated: tuple[int, ...] = ()  # degrees that always carry a slow oscillation (andolan)

    def cents_of(self, degree: int) -> float:
        octave, d = divmod(degree, len(self.cents))
        return 1200 * octave + self.cents[d]


def _commas(name: str, steps: tuple[int, ...], dominant: int) -> Mode:
    assert sum(steps) == 53, name
    return Mode(f"makam/{name}", tuple(c * COMMA for c in accumulate(steps[:-1], initial=0)), dominant)


def _ratios(name: str, ratios: str, dominant: int, emphasis: tuple[int, ...] = (),
            oscillated: tuple[int, ...] = ()) -> Mode:
    cents = tuple(ratio_cents(Fraction(r)) for r in ratios.split())
    assert all(Fraction(r) in SHRUTIS for r in ratios.split()), name
    return Mode(f"raga/{name}", cents, dominant, emphasis, oscillated)


def _tet(tradition: str, name: str, cents: str, dominant: int) -> Mode:
    return Mode(f"{tradition}/{name}", tuple(float(c) for c in cents.split()), dominant)


WESTERN = {m.name.split("/")[1]: m for m in (
    _tet("western", "major", "0 200 400 500 700 900 1100", 4),
    _tet("western", "minor", "0 200 300 500 700 800 1000", 4),  # natural minor; V chords raise the 7th
)}

# Makam step patterns in commas, tetrachord | pentachord, 53 commas to the octave. Rast and hicaz
# follow Arel-Ezgi-Uzdilek theory; ussak and huseyni take the lower segah (2nd degree) of
# performance practice, 7 commas above the tonic rather than AEU's 8.
#   rast    9 8 5 | 9 9 8 5   güçlü (dominant) neva, the 5th
#   hicaz   5 12 5 | 9 8 5 9  hicaz tetrachord + rast pentachord; güçlü neva, the 4th
#   ussak   7 6 9 | 9 5 8 9   güçlü neva, the 4th
#   huseyni 7 6 9 | 9 7 6 9   güçlü hüseyni, the 5th
# Steps of 12 commas (272 c), 7 (158 c) and 6 (136 c) lie 28-42 cents from any 12-TET interval.
MAKAMS = {m.name.split("/")[1]: m for m in (
    _commas("rast", (9, 8, 5, 9, 9, 8, 5), 4),
    _commas("hicaz", (5, 12, 5, 9, 8, 5, 9), 3),
    _commas("ussak", (7, 6, 9, 9, 5, 8, 9), 3),
    _commas("huseyni", (7, 6, 9, 9, 7, 6, 9), 4),
)}

# The twelve just-intonation swaras (5-limit shrutis) that Hindustani ragas draw from.
SHRUTIS = tuple(Fraction(r) for r in "1 16/15 9/8 6/5 5/4 4/3 45/32 3/2 8/5 5/3 9/5 15/8".split())

# Ragas as subsets of the shrutis (ratios to Sa); dominant = vadi, emphasis = samvadi.
#   yaman     S R G M# P D N   vadi G, samvadi N
#   bhairav   S r G M P d N    vadi d, samvadi r; andolan (slow oscillation) on komal r and d
#   kafi      S R g M P D n    vadi P, samvadi S
#   bhupali   S R G P D        pentatonic; vadi G, samvadi D
#   bhairavi  S r g M P d n    vadi M, samvadi S
RAGAS = {m.name.split("/")[1]: m for m in (
    _ratios("yaman", "1 9/8 5/4 45/32 3/2 5/3 15/8", 2, (6,)),
    _ratios("bhairav", "1 16/15 5/4 4/3 3/2 8/5 15/8", 5, (1,), oscillated=(1, 5)),
    _ratios("kafi", "1 9/8 6/5 4/3 3/2 5/3 9/5", 4, (0,)),
    _ratios("bhupali", "1 9/8 5/4 3/2 5/3", 2, (4,)),
    _ratios("bhairavi", "1 16/15 6/5 4/3 3/2 8/5 9/5", 3, (0,)),
)}

# Greek dromoi in 12-TET (rebetiko/folk names in brackets).
GREEK = {m.name.split("/")[1]: m for m in (
    _tet("greek", "dorian", "0 200 300 500 700 900 1000", 4),
    _tet("greek", "phrygian", "0 100 300 500 700 800 1000", 4),  # [ousak]
    _tet("greek", "hijaz", "0 100 400 500 700 800 1000", 3),  # [hitzaz], phrygian dominant
    _tet("greek", "mixolydian", "0 200 400 500 700 900 1000", 4),
)}

MODES = {"western": WESTERN, "makam": MAKAMS, "raga": RAGAS, "greek": GREEK}

# Where each tradition puts its tonic, in Hz. Makams sound at concert pitch as written (bolahenk):
# rast on G (rast), the others on A (dügah). Sa sits where most tanpuras and harmoniums are tuned
# (C#); the dromoi are played from D, the clarinet's home. Western music moves through all twelve
# keys at A440. Each clip then tunes up or down by up to TUNING_CENTS (instrument and ensemble
# tuning), so the tonic is a convention of the tradition, not one fixed frequency.
TONICS = {"makam/rast": 196.0, "makam/hicaz": 220.0, "makam/ussak": 220.0, "makam/huseyni": 220.0,
          **{name: 138.59 for name in (f"raga/{r}" for r in RAGAS)},
          **{name: 146.83 for name in (f"greek/{g}" for g in GREEK)}}
WESTERN_KEYS = tuple(110.0 * 2 ** (k / 12) for k in range(12))  # A2 .. G#3
TUNING_CENTS = 25.0
