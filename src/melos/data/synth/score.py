"""What a clip contains, before any sound: notes and drum hits per instrument, and its labels.

A `Score` is composed from one random stream and rendered from another, so the labels can be
recomputed without rendering (a resumed corpus run reads them without touching the audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .rhythm import Grid
from .tunings import Mode


@dataclass
class Note:
    onset: float  # seconds
    duration: float  # seconds
    cents: float  # above the tonic
    velocity: float = 1.0
    glide_s: float = 0.0  # portamento (meend) into the note from `bend_from`
    bend_from: float | None = None  # cents the glide starts at
    gamaka_cents: float = 0.0  # peak-to-peak depth of a slow oscillation on the note (andolan)
    gamaka_hz: float = 0.0
    voice: int = 0  # separate monophonic lines of one instrument (chord pads)


@dataclass
class Hit:
    onset: float
    stroke: str
    velocity: float
    accent: int  # 2 cycle start, 1 group start, 0 other


@dataclass
class Part:
    instrument: str
    role: str  # melody | heterophony | accompaniment | bass | drone | percussion
    level_db: float = 0.0
    notes: list[Note] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)


@dataclass
class Score:
    tradition: str
    mode: Mode
    grid: Grid
    tonic_hz: float
    parts: list[Part]

    @property
    def seconds(self) -> float:
        return self.grid.seconds

    def trim(self) -> Score:
        """Keep what sounds inside [0, seconds): notes already ringing at time zero keep their
        negative onsets (the clip starts mid-phrase), notes past the end are shortened, parts
        left empty are dropped."""
        for part in self.parts:
            part.notes = sorted((n for n in part.notes if n.onset < self.seconds and n.onset + n.duration > 0),
                                key=lambda n: n.onset)
            for n in part.notes:
                n.duration = min(n.duration, self.seconds - n.onset)
            part.hits = sorted((h for h in part.hits if 0 <= h.onset < self.seconds), key=lambda h: h.onset)
        self.parts = [p for p in self.parts if p.notes or p.hits]  # a part silent in this clip is not listed
        return self

    def labels(self) -> dict:
        metre = self.grid.metre
        parts = []
        for p in self.parts:
            row: dict = {"instrument": p.instrument, "role": p.role}
            if p.hits:
                row |= {"onsets": [round(h.onset, 4) for h in p.hits], "strokes": [h.stroke for h in p.hits],
                        "accents": [h.accent for h in p.hits]}
            else:
                row |= {"onsets": [round(n.onset, 4) for n in p.notes],
                        "durations": [round(n.duration, 4) for n in p.notes],
                        "cents": [round(n.cents, 3) for n in p.notes],
                        "glide_s": [round(n.glide_s, 3) for n in p.notes],
                        "gamaka": [[round(n.gamaka_cents, 1), round(n.gamaka_hz, 2)] for n in p.notes]}
            parts.append(row)
        return {
            "tradition": self.tradition,
            "mode": self.mode.name,
            "metre": metre.label,
            "instruments": [p.instrument for p in self.parts],
            "tonic_hz": round(self.tonic_hz, 3),
            "tempo_bpm": round(60 / self.grid.pulse_s, 2),
            "seconds": self.seconds,
            "scale_cents": [round(c, 3) for c in self.mode.cents],
            "groups": list(metre.groups),
            "pulse_s": round(self.grid.pulse_s, 5),
            "downbeat_s": round(self.grid.downbeat_s, 5),
            "parts": parts,
        }
