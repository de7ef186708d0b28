"""Composition helpers shared by the traditions: cutting groups into note values, melodic walks
over scale degrees, ornaments, heterophonic doubling and drum patterns on additive cycles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .rhythm import Grid
from .score import Hit, Note
from .tunings import Mode

Rhythms = dict[int, list[tuple[float, ...]]]  # group length (pulses) -> ways to fill it

PLAIN: Rhythms = {
    1: [(1,), (0.5, 0.5)],
    2: [(2,), (1, 1), (1.5, 0.5), (0.5, 0.5, 1)],
    3: [(3,), (2, 1), (1, 1, 1), (1, 2), (1.5, 0.5, 1)],
    4: [(4,), (2, 2), (3, 1), (1, 1, 2), (2, 1, 1), (1, 1, 1, 1)],
}


def choose(rng: np.random.Generator, options: list | tuple):
    return options[int(rng.integers(len(options)))]


def cycle_rhythm(rng: np.random.Generator, groups: tuple[int, ...], rhythms: Rhythms,
                 rest: float = 0.05) -> list[tuple[float, float, bool]]:
    """(pulse, length in pulses, starts a group) for the notes of one cycle; each note is left
    out as a rest with probability `rest`."""
    out, at = [], 0.0
    for length in groups:
        for i, value in enumerate(choose(rng, rhythms[length])):
            if rng.random() >= rest:
                out.append((at, float(value), i == 0))
            at += value
    return out


def rhythm(rng: np.random.Generator, grid: Grid, rhythms: Rhythms,
           rest: float = 0.05) -> list[tuple[int, float, float, bool]]:
    """(cycle, pulse, length, starts a group) for every note of the clip, a fresh rhythm per cycle."""
    return [(c, *note) for c in range(grid.cycles) for note in cycle_rhythm(rng, grid.metre.groups, rhythms, rest)]


def step(rng: np.random.Generator, mode: Mode, degree: int, low: int, high: int, toward: int | None = None,
         weights: dict[int, float] | None = None) -> int:
    """The next degree of a mostly stepwise walk within [low, high], drawn toward `toward` and
    onto important degrees (`weights` by degree within the octave)."""
    moves = np.array([-3, -2, -1, 0, 1, 2, 3])
    p = np.array([0.03, 0.12, 0.33, 0.08, 0.33, 0.08, 0.03])
    target = degree + moves
    p = np.where((target >= low) & (target <= high), p, 0.0)
    if toward is not None:
        p *= np.where(np.abs(target - toward) < abs(degree - toward), 1.8, 1.0)
    if weights:
        p *= np.array([weights.get(int(t) % len(mode.cents), 1.0) for t in target])
    return int(target[rng.choice(moves.size, p=p / p.sum())])


def grace(note: Note, cents: float, seconds: float = 0.05) -> list[Note]:
    """A short grace note at the onset that takes its time from the main note (çarpma, kan)."""
    seconds = min(seconds, 0.3 * note.duration)
    main = replace(note, onset=note.onset + seconds, duration=note.duration - seconds, glide_s=0.0, bend_from=None)
    return [Note(note.onset, seconds, cents, 0.8 * note.velocity), main]


def heterophony(rng: np.random.Generator, melody: list[Note], grid: Grid, starts: list[bool], octave: float,
                repluck: bool) -> list[Note]:
    """A second instrument playing the melody's group-start notes, held for the group (or
    re-plucked on each pulse), shifted by `octave` cents and a few ms late."""
    out = []
    lag = rng.uniform(0.0, 0.025)
    firsts = [n for n, first in zip(melody, starts) if first]
    for i, note in enumerate(firsts):
        end = firsts[i + 1].onset if i + 1 < len(firsts) else note.onset + note.duration
        length = max(end - note.onset, note.duration)
        count = max(1, int(round(length / grid.pulse_s))) if repluck else 1
        for k in range(count):
            out.append(Note(note.onset + lag + k * length / count, length / count, note.cents + octave,
                            (0.8 if k == 0 else 0.55) * note.velocity))
    return out


def drum_cycle(rng: np.random.Generator, grid: Grid, group_strokes: tuple[str, ...], fill: float = 0.6,
               half: float = 0.15, jitter: float = 0.004) -> list[Hit]:
    """Strong strokes on every group start (the cycle start strongest), soft `ka` fillers on
    other pulses and now and then between pulses: the additive grouping is audible."""
    metre, hits = grid.metre, []
    for cycle in range(grid.cycles):
        for pulse in range(metre.pulses):
            t = grid.time(cycle, pulse) + rng.normal(0, jitter)
            if pulse in metre.group_starts:
                stroke = group_strokes[metre.group_starts.index(pulse)]
                velocity = 1.0 if pulse == 0 else rng.uniform(0.8, 0.92)
                hits.append(Hit(t, stroke, velocity, metre.accent(pulse)))
            elif rng.random() < fill:
                hits.append(Hit(t, "ka", rng.uniform(0.25, 0.4), 0))
            if rng.random() < half:
                hits.append(Hit(t + 0.5 * grid.pulse_s, "ka", rng.uniform(0.15, 0.25), 0))
    return hits
