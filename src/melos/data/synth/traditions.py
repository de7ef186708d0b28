"""The four traditions: how a clip's parameters are drawn and its notes composed.

  western  12-TET major/minor; a chord progression (I-IV-V-I, ii-V-I, I-vi-IV-V, ...) one or two
           chords a bar; a melody on chord tones at group starts and scale steps between; 4/4 or
           3/4 at 80-140 bpm; piano/guitar/strings accompaniment, optional bass, drum kit.
  makam    53-comma makams (rast, hicaz, ussak, huseyni); a stepwise seyir that circles the
           dominant (güçlü) and descends to the tonic; usul cycles 9/8 (2+2+2+3), 7/8 (3+2+2),
           10/8 (3+2+2+3) at 200-320 eighths a minute; ney/kemence glides and grace notes; oud,
           kanun, ney, kemence in heterophony; bendir or kudüm.
  raga     just-intonation ragas (yaman, bhairav, kafi, bhupali, bhairavi); long notes that favour
           vadi and samvadi, meend glides and andolan oscillations; voice (shadowed by sarangi
           and/or harmonium), sarangi, bansuri or sitar (now and then with a second one) over a
           tanpura drone (Pa Sa Sa Sa); tabla thekas of teental, rupak or jhaptal at 100-200
           matras a minute.
  greek    12-TET dromoi (dorian, phrygian, hijaz, mixolydian); dance tunes of repeated one-cycle
           motifs (AABB) in 7/8 (3+2+2, kalamatianos) or 9/8 (2+2+2+3); a two-chord vamp or a
           tonic-fifth drone on guitar or laouto (bass on the downbeat, chords on the other
           groups); clarinet, bouzouki (tremolo) or violin; toumbeleki or daouli.

Every clip draws its mode, then its tonic where the tradition conventionally puts that mode
(`tunings.TONICS`; western: any of the twelve keys), tuned up or down by up to 25 cents; then its
tempo, metre, instruments (3-5) and mix levels. Tempo is the pulse rate: quarters, eighths or matras.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .instruments import INSTRUMENTS, Plucked, Sustained
from .phrases import PLAIN, choose, cycle_rhythm, drum_cycle, grace, heterophony, rhythm, step
from .rhythm import METRES, Grid
from .score import Hit, Note, Part, Score
from .tunings import GREEK, MAKAMS, RAGAS, TONICS, TUNING_CENTS, WESTERN, WESTERN_KEYS, Mode, ratio_cents

TRADITIONS = ("western", "makam", "raga", "greek")

# Octave a melody instrument plays in, in cents above the tonic's octave.
REGISTER = {"flute": 1200, "violin": 1200, "clarinet": 1200, "piano": 1200, "guitar": 1200, "ney": 1200,
            "kemence": 1200, "kanun": 1200, "oud": 0, "voice": 0, "sarangi": 0, "sitar": 0, "bansuri": 1200,
            "bouzouki": 1200}


def compose(tradition: str, seed: int, seconds: float = 5.0) -> Score:
    """The score of clip `seed` of `tradition`: cheap, deterministic, no audio."""
    if tradition not in TRADITIONS:
        raise ValueError(f"unknown tradition {tradition!r}; expected one of {TRADITIONS}")
    rng = np.random.default_rng([seed, TRADITIONS.index(tradition), 0])
    return COMPOSERS[tradition](rng, seconds).trim()


def _grid(rng: np.random.Generator, label: str, tempo: float, seconds: float) -> Grid:
    pulse = 60 / tempo
    return Grid(METRES[label], pulse, -rng.uniform(0, METRES[label].pulses * pulse), seconds)


def _tonic(rng: np.random.Generator, mode: Mode) -> float:
    home = choose(rng, WESTERN_KEYS) if mode.name.startswith("western/") else TONICS[mode.name]
    return home * 2 ** (rng.uniform(-TUNING_CENTS, TUNING_CENTS) / 1200)


def _sustained(instrument: str) -> bool:
    return isinstance(INSTRUMENTS[instrument], Sustained)


def _ornament(rng: np.random.Generator, notes: list[Note], starts: list[bool], note: Note, first: bool,
              glide: float, upper: float | None, grace_p: float) -> None:
    """Append `note` with a glide from the previous note (probability `glide`) or a grace note
    from `upper` (probability `grace_p`); `starts` marks the main notes that begin a group."""
    if notes and rng.random() < glide:
        note.glide_s = min(rng.uniform(0.04, 0.12), 0.4 * note.duration)
        note.bend_from = notes[-1].cents
    if upper is not None and note.duration > 0.15 and rng.random() < grace_p:
        notes.extend(grace(note, upper, rng.uniform(0.04, 0.07)))
        starts.extend([False, first])
    else:
        notes.append(note)
        starts.append(first)


# ---- western ----------------------------------------------------------------------------------

PROGRESSIONS = {  # scale-degree roots, 0 = I
    "major": ((0, 3, 4, 0), (1, 4, 0, 0), (0, 5, 3, 4), (0, 4, 5, 3), (0, 3, 0, 4)),
    "minor": ((0, 3, 4, 0), (0, 5, 2, 6), (0, 3, 6, 2), (1, 4, 0, 0)),
}


def _triad(mode: Mode, root: int) -> list[float]:
    cents = [mode.cents_of(root + k) for k in (0, 2, 4)]
    if mode.name == "western/minor" and root == 4:
        cents[1] += 100  # harmonic minor: the dominant chord is major, with a leading tone
    return cents


def _western(rng: np.random.Generator, seconds: float) -> Score:
    key = choose(rng, ("major", "minor"))
    mode = WESTERN[key]
    label = choose(rng, ("4/4", "3/4"))
    tempo = rng.uniform(80, 140)
    grid = _grid(rng, label, tempo, seconds)
    progression = choose(rng, PROGRESSIONS[key])
    per_cycle = 2 if label == "4/4" and tempo < 100 else 1
    span = grid.metre.pulses / per_cycle

    def chord(cycle: int, pulse: float) -> list[float]:
        return _triad(mode, progression[(cycle * per_cycle + int(pulse // span)) % len(progression)])

    def pitch(degree: int, classes: set[float]) -> float:
        cents = mode.cents_of(degree)
        return cents + 100 if (cents + 100) % 1200 in classes and cents % 1200 == 1000 else cents

    lead = choose(rng, ("flute", "violin", "clarinet", "piano", "guitar"))
    comp = choose(rng, [i for i in ("piano", "guitar", "strings") if i != lead])
    melody: list[Note] = []
    degree = int(rng.integers(7, 12))
    for cycle, pulse, length, first in rhythm(rng, grid, PLAIN):
        classes = {c % 1200 for c in chord(cycle, pulse)}
        if first:
            tones = [d for d in range(5, 17) if pitch(d, classes) % 1200 in classes]
            degree = min(tones, key=lambda d: (abs(d - degree), rng.random()))
        else:
            degree = step(rng, mode, degree, 5, 16)
        velocity = rng.uniform(0.85, 1.0) if first else rng.uniform(0.65, 0.85)
        onset = grid.time(cycle, pulse) + rng.normal(0, 0.006)
        melody.append(Note(onset, 0.95 * length * grid.pulse_s, pitch(degree, classes), velocity))

    accompaniment, bass = [], []
    arpeggio = rng.random() < 0.5
    for cycle in range(grid.cycles):
        for pulse in range(grid.metre.pulses):
            ch, t = chord(cycle, pulse), grid.time(cycle, pulse)
            strong = pulse in grid.metre.group_starts
            voicing = [ch[0] - 1200, ch[0], ch[1], ch[2]]
            if comp == "strings" and pulse % span == 0:
                accompaniment += [Note(t, span * grid.pulse_s, c, 0.7, voice=v) for v, c in enumerate(ch)]
            elif comp == "guitar":
                accompaniment += [Note(t + 0.012 * k, grid.pulse_s, c, 0.75 if strong else 0.5)
                                  for k, c in enumerate(voicing)]
            elif comp == "piano" and arpeggio:
                accompaniment += [Note(t + h * grid.pulse_s / 2, grid.pulse_s, voicing[(2 * pulse + h) % 4], 0.55)
                                  for h in (0, 1)]
            elif comp == "piano" and strong:
                length = grid.metre.groups[grid.metre.group_starts.index(pulse)] * grid.pulse_s
                accompaniment += [Note(t, length, c, 0.7 if k else 0.8) for k, c in enumerate(voicing)]
            if strong:
                root = ch[0] if pulse % span == 0 else ch[2]
                bass.append(Note(t, 0.9 * span * grid.pulse_s, root - 1200 * (1 + (root + 100) // 1200), 0.9))

    parts = [Part(lead, "melody", 0.0, melody), Part(comp, "accompaniment", rng.uniform(-9, -3), accompaniment)]
    if rng.random() < 0.5:
        parts.append(Part("bass", "bass", rng.uniform(-7, -3), bass))
    parts.append(Part("drums", "percussion", rng.uniform(-8, -2), hits=_kit(rng, grid)))
    return Score("western", mode, grid, _tonic(rng, mode), parts)


def _kit(rng: np.random.Generator, grid: Grid) -> list[Hit]:
    """Kick on the group starts (the downbeat loudest), snare on the other beats, eighth hats."""
    metre, hits = grid.metre, []
    for cycle in range(grid.cycles):
        for pulse in range(metre.pulses):
            t = grid.time(cycle, pulse) + rng.normal(0, 0.003)
            if pulse in metre.group_starts:
                hits.append(Hit(t, "kick", 1.0 if pulse == 0 else rng.uniform(0.8, 0.9), metre.accent(pulse)))
            else:
                hits.append(Hit(t, "snare", rng.uniform(0.5, 0.65), 0))
            hits.append(Hit(t, "hat", rng.uniform(0.3, 0.4), 0))
            hits.append(Hit(t + grid.pulse_s / 2, "hat", rng.uniform(0.2, 0.3), 0))
            if pulse == 1 and metre.pulses == 4 and rng.random() < 0.3:
                hits.append(Hit(t + grid.pulse_s / 2, "kick", rng.uniform(0.5, 0.6), 0))
    return hits


# ---- makam ------------------------------------------------------------------------------------

USULS = {"9/8 (2+2+2+3)": ("dum", "tek", "dum", "tek"), "7/8 (3+2+2)": ("dum", "tek", "tek"),
         "10/8 (3+2+2+3)": ("dum", "tek", "tek", "dum")}


def _makam(rng: np.random.Generator, seconds: float) -> Score:
    mode = MAKAMS[choose(rng, tuple(MAKAMS))]
    label = choose(rng, tuple(USULS))
    grid = _grid(rng, label, rng.uniform(200, 320), seconds)
    lead = choose(rng, ("ney", "oud", "kanun", "kemence"))
    others = [i for i in ("ney", "oud", "kanun", "kemence") if i != lead]
    followers = [others[i] for i in rng.permutation(3)[:1 + int(rng.random() < 0.4)]]
    items = rhythm(rng, grid, PLAIN, rest=0.04)
    melody: list[Note] = []
    starts: list[bool] = []
    degree = mode.dominant + int(rng.integers(-1, 2))
    for k, (cycle, pulse, length, first) in enumerate(items):
        if k:  # the seyir: around the dominant first, then down to the tonic
            degree = step(rng, mode, degree, -2, 9, toward=mode.dominant if k < len(items) / 2 else 0)
        note = Note(grid.time(cycle, pulse) + rng.normal(0, 0.006), 0.97 * length * grid.pulse_s,
                    REGISTER[lead] + mode.cents_of(degree), rng.uniform(0.85, 1.0) if first else rng.uniform(0.7, 0.9))
        _ornament(rng, melody, starts, note, first, 0.3 if _sustained(lead) else 0.0,
                  REGISTER[lead] + mode.cents_of(degree + 1), 0.15)
    parts = [Part(lead, "melody", 0.0, melody)]
    for follower in followers:
        notes = heterophony(rng, melody, grid, starts, REGISTER[follower] - REGISTER[lead],
                            repluck=isinstance(INSTRUMENTS[follower], Plucked) and rng.random() < 0.5)
        parts.append(Part(follower, "heterophony", rng.uniform(-7, -2), notes))
    drum = choose(rng, ("bendir", "kudum"))
    parts.append(Part(drum, "percussion", rng.uniform(-8, -2), hits=drum_cycle(rng, grid, USULS[label])))
    return Score("makam", mode, grid, _tonic(rng, mode), parts)


# ---- raga -------------------------------------------------------------------------------------

THEKAS = {
    "tala/teental": "dha dhin dhin dha dha dhin dhin dha dha tin tin ta ta dhin dhin dha",
    "tala/rupak": "tin tin na dhi na dhi na",
    "tala/jhaptal": "dhi na dhi dhi na ti na dhi dhi na",
}
PA_BELOW = ratio_cents(3 / 4)  # the tanpura's first string: the just fifth, an octave down
SLOW = {2: [(2,), (1, 1), (1.5, 0.5)], 3: [(3,), (2, 1), (1, 2), (1, 1, 1)],
        4: [(4,), (2, 2), (3, 1), (2, 1, 1), (1, 1, 2)]}


def _raga(rng: np.random.Generator, seconds: float) -> Score:
    mode = RAGAS[choose(rng, tuple(RAGAS))]
    tala = choose(rng, tuple(THEKAS))
    grid = _grid(rng, tala, rng.uniform(100, 200), seconds)
    lead = choose(rng, ("voice", "sarangi", "bansuri", "sitar"))
    weights = {0: 1.5, mode.dominant: 2.5} | {d: 1.8 for d in mode.emphasis}
    size = len(mode.cents)
    melody: list[Note] = []
    starts: list[bool] = []
    degree = choose(rng, (0, mode.dominant))
    for k, (cycle, pulse, length, first) in enumerate(rhythm(rng, grid, SLOW, rest=0.03)):
        if k:
            degree = step(rng, mode, degree, -2, size + 2, weights=weights)
        note = Note(grid.time(cycle, pulse) + rng.normal(0, 0.008), 0.98 * length * grid.pulse_s,
                    REGISTER[lead] + mode.cents_of(degree), rng.uniform(0.75, 1.0))
        if note.duration > 0.35 and (degree % size in mode.oscillated or (note.duration > 0.5 and rng.random() < 0.35)):
            note.gamaka_cents, note.gamaka_hz = rng.uniform(40, 110), rng.uniform(2.0, 5.0)
        _ornament(rng, melody, starts, note, first, 0.45 if _sustained(lead) else 0.3,
                  REGISTER[lead] + mode.cents_of(degree + 1), 0.1)
    parts = [Part(lead, "melody", 0.0, melody)]
    for follower in _accompanists(rng, lead):  # each shadows the lead a little late
        lag = rng.uniform(0.06, 0.14)
        shadow = [replace(n, onset=n.onset + lag, velocity=0.7 * n.velocity) for n in melody if n.duration > 0.1]
        parts.append(Part(follower, "heterophony", rng.uniform(-9, -3), shadow))
    parts.append(Part("tanpura", "drone", rng.uniform(-10, -4), _tanpura(rng, seconds)))
    parts.append(Part("tabla", "percussion", rng.uniform(-8, -2), hits=_theka(rng, grid, THEKAS[tala].split())))
    return Score("raga", mode, grid, _tonic(rng, mode), parts)


def _accompanists(rng: np.random.Generator, lead: str) -> list[str]:
    """A singer is followed by one or two of sarangi and harmonium; an instrumentalist now and
    then by a second melodic instrument (a jugalbandi)."""
    if lead == "voice":
        return [("sarangi", "harmonium")[i] for i in rng.permutation(2)[:1 + int(rng.random() < 0.4)]]
    others = [i for i in ("sarangi", "bansuri", "sitar", "harmonium") if i != lead]
    return [others[int(rng.integers(len(others)))]] if rng.random() < 0.5 else []


def _tanpura(rng: np.random.Generator, seconds: float) -> list[Note]:
    """Pa Sa Sa Sa(low), the fourth string followed by a rest, ringing on: a drone that is already
    sounding when the clip starts (so the first plucks have negative onsets)."""
    spacing = rng.uniform(0.28, 0.4)
    t, notes = -3.0 + rng.uniform(0, 5 * spacing), []
    while t < seconds:
        for i, (cents, velocity) in enumerate(((PA_BELOW, 0.8), (0.0, 0.7), (0.0, 0.7), (-1200.0, 1.0))):
            notes.append(Note(t, 3.0, cents, velocity * rng.uniform(0.9, 1.0)))
            t += spacing * (2 if i == 3 else 1)
    return notes


def _theka(rng: np.random.Generator, grid: Grid, bols: list[str]) -> list[Hit]:
    """One bol per matra, vibhag starts accented; sometimes a `ti ra ki ta` fill ends the cycle."""
    metre, hits = grid.metre, []
    for cycle in range(grid.cycles):
        for matra, bol in enumerate(bols):
            t = grid.time(cycle, matra) + rng.normal(0, 0.004)
            if matra == metre.pulses - 1 and rng.random() < 0.3:
                hits += [Hit(t + k * grid.pulse_s / 4, b, rng.uniform(0.3, 0.45), 0)
                         for k, b in enumerate(("ti", "ra", "ki", "ta"))]
                continue
            accent = metre.accent(matra)
            velocity = (1.0, rng.uniform(0.8, 0.9), rng.uniform(0.45, 0.65))[2 - accent]
            hits.append(Hit(t, bol, velocity, accent))
            if rng.random() < 0.12:
                hits.append(Hit(t + grid.pulse_s / 2, choose(rng, ("te", "ge")), rng.uniform(0.2, 0.3), 0))
    return hits


# ---- greek ------------------------------------------------------------------------------------

DANCES = {"7/8 (3+2+2)": (("dum", "tek", "tek"), (300, 420)),  # group-start strokes, tempo range
          "9/8 (2+2+2+3)": (("dum", "tek", "dum", "tek"), (200, 300))}
VAMPS = {"dorian": ((0, 300, 700), (500, 900, 1200)), "phrygian": ((0, 300, 700), (100, 500, 800)),
         "hijaz": ((0, 400, 700), (100, 500, 800)), "mixolydian": ((0, 400, 700), (-200, 200, 500))}


def _greek(rng: np.random.Generator, seconds: float) -> Score:
    name = choose(rng, tuple(GREEK))
    mode = GREEK[name]
    label = choose(rng, tuple(DANCES))
    strokes, tempi = DANCES[label]
    grid = _grid(rng, label, rng.uniform(*tempi), seconds)
    lead = choose(rng, ("clarinet", "bouzouki", "violin"))

    def motif() -> list[tuple[float, float, bool, int]]:
        degree, out = choose(rng, (0, mode.dominant)), []
        for pulse, length, first in cycle_rhythm(rng, grid.metre.groups, PLAIN, rest=0.03):
            degree = step(rng, mode, degree, -1, 9) if out else degree
            out.append((pulse, length, first, degree))
        return out

    def vary(m: list) -> list:
        last = grid.metre.group_starts[-1]
        return [n for n in m if n[0] < last] + [(p, n, f, step(rng, mode, d, -1, 9)) for p, n, f, d in m if p >= last]

    a, b = motif(), motif()
    form = [a, vary(a), b, vary(b)]  # AA'BB', one cycle each
    melody: list[Note] = []
    starts: list[bool] = []
    for cycle in range(grid.cycles):
        for pulse, length, first, degree in form[cycle % 4]:
            cents = REGISTER[lead] + mode.cents_of(degree)
            onset = grid.time(cycle, pulse) + rng.normal(0, 0.006)
            velocity = rng.uniform(0.85, 1.0) if first else rng.uniform(0.65, 0.85)
            duration = 0.95 * length * grid.pulse_s
            if lead == "bouzouki" and length >= 1.5 and rng.random() < 0.6:  # tremolo
                count = max(2, int(round(duration / 0.07)))
                melody += [Note(onset + i * duration / count, duration / count, cents, velocity * (0.7 if i else 1))
                           for i in range(count)]
                starts += [first] + [False] * (count - 1)
                continue
            _ornament(rng, melody, starts, Note(onset, duration, cents, velocity), first,
                      0.3 if lead == "clarinet" else 0.15 if lead == "violin" else 0.0,
                      REGISTER[lead] + mode.cents_of(degree + 1), 0.15)
    chords = ((0, 700),) if rng.random() < 0.3 else VAMPS[name]
    change = int(rng.integers(1, 3))
    comp = choose(rng, ("guitar", "laouto"))
    accompaniment = []
    for cycle, start, length in grid.groups():
        chord, t = chords[(cycle // change) % len(chords)], grid.time(cycle, start)
        if start == 0:
            accompaniment.append(Note(t, length * grid.pulse_s, chord[0] - 1200, 0.85))
        else:
            accompaniment += [Note(t + 0.01 * k, length * grid.pulse_s, c, 0.6) for k, c in enumerate(chord)]
    parts = [Part(lead, "melody", 0.0, melody), Part(comp, "accompaniment", rng.uniform(-9, -3), accompaniment)]
    if rng.random() < 0.5:
        follower = choose(rng, [i for i in ("clarinet", "bouzouki", "violin") if i != lead])
        notes = heterophony(rng, melody, grid, starts, REGISTER[follower] - REGISTER[lead],
                            repluck=follower == "bouzouki")
        parts.append(Part(follower, "heterophony", rng.uniform(-7, -2), notes))
    drum = choose(rng, ("toumbeleki", "daouli"))
    parts.append(Part(drum, "percussion", rng.uniform(-8, -2), hits=drum_cycle(rng, grid, strokes, fill=0.5)))
    return Score("greek", mode, grid, _tonic(rng, mode), parts)


COMPOSERS = {"western": _western, "makam": _makam, "raga": _raga, "greek": _greek}
