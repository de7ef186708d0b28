"""Metres and cycles as additive groupings of a pulse, and the time grid a clip is composed on.

Every metre is a cycle of `pulses` counted in groups: 4/4 is 2+2 quarter notes (downbeat and
beat 3 stressed), 9/8 aksak is 2+2+2+3 eighths, teental is 4+4+4+4 matras. A clip's tempo is
the pulse rate (quarters for x/4, eighths for x/8, matras for talas). Group starts are the
accented positions; the cycle start is the strongest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Metre:
    label: str
    groups: tuple[int, ...]

    @property
    def pulses(self) -> int:
        return sum(self.groups)

    @property
    def group_starts(self) -> tuple[int, ...]:
        starts, at = [], 0
        for g in self.groups:
            starts.append(at)
            at += g
        return tuple(starts)

    def accent(self, position: float) -> int:
        """2 on the cycle start, 1 on other group starts, 0 elsewhere (off-group and between pulses)."""
        if position == 0:
            return 2
        return int(position in self.group_starts)


METRES = {m.label: m for m in (
    Metre("4/4", (2, 2)),
    Metre("3/4", (3,)),
    Metre("9/8 (2+2+2+3)", (2, 2, 2, 3)),  # aksak (makam), zeibekiko-like (greek)
    Metre("7/8 (3+2+2)", (3, 2, 2)),  # devr-i hindi (makam), kalamatianos (greek)
    Metre("10/8 (3+2+2+3)", (3, 2, 2, 3)),  # aksak semai
    Metre("tala/teental", (4, 4, 4, 4)),
    Metre("tala/rupak", (3, 2, 2)),
    Metre("tala/jhaptal", (2, 3, 2, 3)),
)}


@dataclass(frozen=True)
class Grid:
    """Time of (cycle, pulse) positions. The clip starts inside a cycle: cycle 0 begins at
    `start` <= 0 so the first downbeat is not always at time zero."""

    metre: Metre
    pulse_s: float
    start: float
    seconds: float

    @property
    def cycle_s(self) -> float:
        return self.metre.pulses * self.pulse_s

    @property
    def cycles(self) -> int:
        """Cycles needed to cover the clip."""
        return int((self.seconds - self.start) // self.cycle_s) + 1

    @property
    def downbeat_s(self) -> float:
        """The first cycle start at or after time zero."""
        return self.start if self.start >= 0 else self.start + self.cycle_s

    def time(self, cycle: int, pulse: float) -> float:
        return self.start + (cycle * self.metre.pulses + pulse) * self.pulse_s

    def groups(self) -> Iterator[tuple[int, int, int]]:
        """(cycle, start pulse, length) for every group of every cycle, in time order."""
        for c in range(self.cycles):
            for start, length in zip(self.metre.group_starts, self.metre.groups):
                yield c, start, length
