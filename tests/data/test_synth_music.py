"""melos.data.synth: the traditions differ in tuning, ornament and metre, in the labels and in the audio.

Pitches are measured from single-instrument stems with a zero-padded FFT peak near the labelled
note; metres from the percussion stem's onset envelope at the pulse grid.
"""

from fractions import Fraction
from math import log2

import numpy as np
import pytest

from melos.data.synth import SAMPLE_RATE, compose, render_stems
from melos.data.synth.tunings import COMMA, GREEK, MAKAMS, RAGAS, SHRUTIS, WESTERN

SECONDS = 3.0


def seeds(tradition, want, count, seconds=SECONDS):
    """The first `count` seeds whose labels satisfy `want` (composition is cheap, no audio)."""
    found = [s for s in range(400) if want(compose(tradition, s, seconds).labels())][:count]
    assert len(found) == count, f"no {count} {tradition} clips found"
    return found


def part(labels, role):
    return next(p for p in labels["parts"] if p["role"] == role)


def off_grid(cents, step=100.0):
    """Distance of each value from the nearest multiple of `step`."""
    cents = np.asarray(cents, float)
    return np.abs(cents - step * np.round(cents / step))


def pitch(y, guess_hz, span_cents=150):
    """Frequency of the strongest spectral peak within `span_cents` of `guess_hz` (Hann window,
    zero-padded FFT, parabolic interpolation of the log magnitude)."""
    size = max(1 << 16, 1 << int(np.ceil(np.log2(8 * y.size))))
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size), size))
    freqs = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    low, high = guess_hz * 2 ** (-span_cents / 1200), guess_hz * 2 ** (span_cents / 1200)
    band = np.flatnonzero((freqs > low) & (freqs < high))
    k = band[np.argmax(spec[band])]
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-20)
    return freqs[k] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0])


def measured_notes(stem, labels, row, tonic, min_seconds=0.25, settle=0.1):
    """(labelled cents, measured cents) of the plain notes of a part that last long enough to measure."""
    out = []
    for onset, duration, cents, glide, (depth, _) in zip(row["onsets"], row["durations"], row["cents"],
                                                         row["glide_s"], row["gamaka"]):
        if onset < 0 or duration < min_seconds or glide or depth:
            continue
        a, b = int((onset + settle) * SAMPLE_RATE), int((onset + duration) * SAMPLE_RATE)
        f = pitch(stem[a:b], tonic * 2 ** (cents / 1200))
        out.append((cents, 1200 * log2(f / tonic)))
    return np.array(out)


def test_tuning_tables():
    for mode in MAKAMS.values():
        steps = np.diff([*mode.cents, 1200.0])
        assert np.allclose(steps / COMMA, np.round(steps / COMMA)) and round(sum(steps / COMMA)) == 53
    assert all(off_grid(np.diff(m.cents)).max() > 20 for k, m in MAKAMS.items() if k != "rast")
    for mode in RAGAS.values():
        assert all(any(abs(c - 1200 * log2(r)) < 1e-9 for r in SHRUTIS) for c in mode.cents)
    assert Fraction(5, 4) in SHRUTIS and off_grid(1200 * log2(5 / 4)) > 13  # a just third is not 12-TET
    for mode in [*WESTERN.values(), *GREEK.values()]:
        assert off_grid(mode.cents).max() == 0


def plain(row, min_seconds=0.25):
    """Labelled cents of the notes `measured_notes` measures."""
    return [c for o, d, c, gl, (depth, _) in zip(row["onsets"], row["durations"], row["cents"], row["glide_s"],
                                                 row["gamaka"]) if o >= 0 and d >= min_seconds and not gl and not depth]


def steps(cents):
    """Intervals between consecutive distinct pitches (consecutive scale degrees used)."""
    return np.diff(np.unique(np.round(cents, 1)))


def test_makam_intervals_are_microtonal_western_are_not():
    def microtonal(lab):
        melody = part(lab, "melody")
        return melody["instrument"] in ("oud", "kanun") and off_grid(steps(plain(melody))).max(initial=0) > 20

    for seed in seeds("makam", microtonal, 3):
        stems, labels = render_stems("makam", seed, SECONDS)
        melody = part(labels, "melody")
        notes = measured_notes(stems[melody["instrument"]], labels, melody, labels["tonic_hz"])
        assert np.abs(notes[:, 0] - notes[:, 1]).max() < 5  # the audio plays the labelled pitches
        heard = [notes[notes[:, 0] == c, 1].mean() for c in np.unique(notes[:, 0])]
        assert off_grid(np.diff(heard)).max() > 20  # and some step between them is far from 12-TET

    assert all(off_grid(steps(part(compose("makam", s, SECONDS).labels(), "melody")["cents"])).max() > 20
               for s in seeds("makam", lambda lab: lab["mode"] in ("makam/hicaz", "makam/ussak"), 3))

    for seed in seeds("western", lambda lab: part(lab, "melody")["instrument"] in ("piano", "guitar"), 2):
        stems, labels = render_stems("western", seed, SECONDS)
        melody = part(labels, "melody")
        assert off_grid(steps(melody["cents"])).max() < 1
        notes = measured_notes(stems[melody["instrument"]], labels, melody, labels["tonic_hz"])
        assert len(notes) >= 3 and np.abs(notes[:, 0] - notes[:, 1]).max() < 5
        assert off_grid(np.diff(notes[:, 1])).max() < 5


def test_raga_pitches_are_just_intonation():
    just = np.array([1200 * log2(r) for r in SHRUTIS] + [1200.0])
    for seed in range(4):
        labels = compose("raga", seed, SECONDS).labels()
        for row in labels["parts"]:
            if "cents" in row:
                assert np.abs(np.subtract.outer(np.mod(row["cents"], 1200), just)).min(axis=1).max() < 1e-3
    def sitar(lab):
        return part(lab, "melody")["instrument"] == "sitar" and len(plain(part(lab, "melody"))) >= 2

    for seed in seeds("raga", sitar, 2):
        stems, labels = render_stems("raga", seed, SECONDS)
        notes = measured_notes(stems["sitar"], labels, part(labels, "melody"), labels["tonic_hz"])
        assert np.abs(notes[:, 0] - notes[:, 1]).max() < 3
        heard = np.mod(notes[:, 1], 1200)
        assert np.abs(np.subtract.outer(heard, just)).min(axis=1).max() < 3


def frame_pitches(y, start, stop, guess_hz, frame=0.06, hop=0.01):
    return np.array([1200 * log2(pitch(y[int(t * SAMPLE_RATE):int((t + frame) * SAMPLE_RATE)], guess_hz) / guess_hz)
                     for t in np.arange(start, stop - frame, hop)])


def notes_of(row):
    """(index, onset, duration, cents, gamaka depth, gamaka rate, glide) per note of a part."""
    return [(i, o, d, c, g[0], g[1], gl) for i, (o, d, c, g, gl)
            in enumerate(zip(row["onsets"], row["durations"], row["cents"], row["gamaka"], row["glide_s"]))]


def test_gamaka_oscillates_and_plain_notes_hold_still():
    def wide(note):
        _, onset, duration, _, depth, _, glide = note
        return onset > 0 and duration > 0.6 and depth > 60 and not glide

    def steady(note):
        _, onset, duration, _, depth, _, glide = note
        return onset > 0 and duration > 0.4 and not depth and not glide

    def melody_with(instruments, kind):
        return lambda lab: part(lab, "melody")["instrument"] in instruments and any(map(kind, notes_of(part(lab, "melody"))))

    stems, labels = render_stems("raga", seeds("raga", melody_with(("voice", "sarangi", "bansuri"), wide), 1)[0], SECONDS)
    melody = part(labels, "melody")
    _, onset, duration, cents, depth, rate, _ = next(filter(wide, notes_of(melody)))
    track = frame_pitches(stems[melody["instrument"]], onset + 0.1, onset + duration,
                          labels["tonic_hz"] * 2 ** (cents / 1200))
    assert 0.6 * depth < np.ptp(track) < 1.4 * depth
    assert abs(np.mean(track)) < 0.25 * depth  # it oscillates around the note
    crossings = np.count_nonzero(np.diff(np.sign(track - np.mean(track))))
    assert abs(crossings - 2 * rate * (duration - 0.16)) <= 2  # at the labelled rate

    stems, labels = render_stems("raga", seeds("raga", melody_with(("sitar",), steady), 1)[0], SECONDS)
    _, onset, duration, cents, *_ = next(filter(steady, notes_of(part(labels, "melody"))))
    track = frame_pitches(stems["sitar"], onset + 0.1, onset + duration, labels["tonic_hz"] * 2 ** (cents / 1200))
    assert np.ptp(track) < 5


ACCENTED = {"4/4": {0, 2}, "3/4": {0}, "9/8 (2+2+2+3)": {0, 2, 4, 6}, "7/8 (3+2+2)": {0, 3, 5},
            "10/8 (3+2+2+3)": {0, 3, 5, 7}, "tala/teental": {0, 4, 8, 12}, "tala/rupak": {0, 3, 5},
            "tala/jhaptal": {0, 2, 5, 7}}


def positions(labels, onsets):
    """Pulse index within the cycle of each onset (None when between pulses)."""
    beats = (np.asarray(onsets) - labels["downbeat_s"]) / labels["pulse_s"]
    on = np.abs(beats - np.round(beats)) < 0.15
    return [int(b) % sum(labels["groups"]) if o else None for b, o in zip(np.round(beats), on)]


@pytest.mark.parametrize("tradition", ["western", "makam", "raga", "greek"])
def test_accents_follow_the_additive_grouping(tradition):
    seen = set()
    for seed in range(12):
        labels = compose(tradition, seed, SECONDS).labels()
        drums = part(labels, "percussion")
        pulses, pulse = sum(labels["groups"]), labels["pulse_s"]
        starts = np.cumsum([0, *labels["groups"][:-1]])
        cycles = labels["downbeat_s"] + pulses * pulse * np.arange(-1, SECONDS / (pulses * pulse) + 1)
        inside = [(p, t) for t in cycles for p in starts if 0.02 < t + p * pulse < SECONDS - 0.02]
        pos = positions(labels, drums["onsets"])
        strong = {p for p, a in zip(pos, drums["accents"]) if a}
        assert {int(p) for p, _ in inside} <= strong <= ACCENTED[labels["metre"]], labels["metre"]
        assert {p for p, a in zip(pos, drums["accents"]) if a == 2} <= {0}
        assert all(a == 0 for p, a in zip(pos, drums["accents"]) if p not in ACCENTED[labels["metre"]])
        seen.add(labels["metre"])
    assert len(seen) >= 2  # several metres are drawn


def onset_strength(y, times, hop=0.005):
    """Rise of the frame RMS (10 ms frames) within 25 ms after each time."""
    n = int(hop * SAMPLE_RATE)
    rms = np.sqrt(np.convolve(y ** 2, np.ones(2 * n) / (2 * n), "same")[::n])
    rise = np.maximum(np.diff(rms, prepend=0.0), 0)
    return np.array([rise[max(0, int(t / hop) - 2):int(t / hop) + 5].max() for t in times])


@pytest.mark.parametrize("tradition,metre", [("makam", "9/8 (2+2+2+3)"), ("greek", "7/8 (3+2+2)"),
                                             ("makam", "10/8 (3+2+2+3)")])
def test_percussion_audio_is_loudest_on_group_starts(tradition, metre):
    seed = seeds(tradition, lambda lab: lab["metre"] == metre and lab["tempo_bpm"] > 240, 1)[0]
    stems, labels = render_stems(tradition, seed, SECONDS)
    drum = part(labels, "percussion")["instrument"]
    pulses = sum(labels["groups"])
    first = labels["downbeat_s"] - pulses * labels["pulse_s"]
    times = first + labels["pulse_s"] * np.arange(4 * pulses)
    keep = (times > 0.01) & (times < SECONDS - 0.05)
    strength = onset_strength(stems[drum].astype(float), times[keep])
    where = np.arange(4 * pulses)[keep] % pulses
    mean = np.array([strength[where == p].mean() for p in range(pulses)])
    loudest = set(np.argsort(mean)[::-1][:len(labels["groups"])].tolist())
    assert loudest == ACCENTED[metre]
    assert mean[list(ACCENTED[metre])].min() > 1.5 * np.delete(mean, list(ACCENTED[metre])).max()


def test_tanpura_is_tuned_to_the_labelled_tonic():
    """Measured between plucks: a pluck restarts its string's phase, which would blur a long FFT."""
    for seed in range(2):
        stems, labels = render_stems("raga", seed, SECONDS)
        tonic = labels["tonic_hz"]
        drone = part(labels, "drone")
        pa = 1200 * log2(3 / 4)
        assert set(np.round(drone["cents"], 3)) == {round(pa, 3), 0.0, -1200.0}  # Pa below, Sa, low Sa
        onsets = np.array(drone["onsets"])
        gaps = [(a, b) for a, b in zip(onsets[:-1], onsets[1:]) if a > 0 and b - a > 0.25]
        heard = [pitch(stems["tanpura"][int((a + 0.02) * SAMPLE_RATE):int(b * SAMPLE_RATE)].astype(float), tonic, 50)
                 for a, b in gaps]
        assert len(heard) >= 3
        assert np.abs(1200 * np.log2(np.array(heard) / tonic)).max() < 3
