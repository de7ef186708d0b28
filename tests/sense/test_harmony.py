"""Chords and key: hand-checked triads, then mir_eval's chord scores on generated progressions."""

import mir_eval
import numpy as np
import pytest

from melos.data.synth.chord_progression import chord_progression
from melos.sense.harmony import ChordSegment, analyze_harmony, chord_labels, chord_templates, snap

SR = 24000


def triad(midi: list[int], seconds: float = 3.0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * k * t) / k for m in midi for k in (1, 2, 3))
    return 0.3 * x / np.abs(x).max()


def labels(audio: np.ndarray) -> list[str]:
    return [s.label for s in analyze_harmony(audio, SR).chords]


def test_templates_are_the_24_triads_and_no_chord():
    assert len(chord_labels()) == 25 and chord_labels()[0] == "C:maj" and chord_labels()[21] == "A:min"
    assert chord_labels()[-1] == "N"
    t = chord_templates()
    assert np.flatnonzero(t[0]).tolist() == [0, 4, 7] and np.flatnonzero(t[21]).tolist() == [0, 4, 9]
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0)


def test_hand_checked_triads_and_silence():
    assert labels(triad([48, 52, 55, 60])) == ["C:maj"]  # C E G C
    assert labels(triad([45, 57, 60, 64])) == ["A:min"]  # A A C E
    assert labels(triad([52, 55, 60])) == ["C:maj"]  # first inversion: E G C is still C major
    assert labels(np.zeros(3 * SR)) == ["N"]
    assert labels(0.1 * np.random.default_rng(0).standard_normal(3 * SR)) == ["N"]  # white noise: a flat chroma
    h = analyze_harmony(np.zeros(3 * SR), SR)
    assert (h.key, h.key_confidence) == ("", 0.0)
    assert h.chords == [ChordSegment(0.0, 3.0, "N")]


def test_silence_then_a_chord_is_n_then_the_chord():
    x = np.concatenate([np.zeros(2 * SR), triad([45, 57, 60, 64])])
    chords = analyze_harmony(x, SR).chords
    assert [c.label for c in chords] == ["N", "A:min"]
    assert chords[1].start == pytest.approx(2.0, abs=0.11)  # one chroma hop


@pytest.mark.parametrize("seed,drums", [(0, False), (1, True), (2, False), (3, True)])
def test_generated_progressions_score_high_with_mir_eval(seed, drums):
    p = chord_progression(seed, n_bars=8, drums=drums)
    h = analyze_harmony(p.audio, p.sample_rate)
    scores = mir_eval.chord.evaluate(p.intervals, p.labels, np.array([[s.start, s.end] for s in h.chords]),
                                     [s.label for s in h.chords])  # weighted by duration
    assert scores["majmin"] >= 0.8 and scores["root"] >= 0.8
    assert h.key == p.key and h.key_confidence > 0.5


def test_keys_and_inversions_are_generated_as_asked():
    p = chord_progression(5, tonic=9, mode="minor", bpm=100, n_bars=4)
    assert p.key == "A minor" and p.labels[0] == "A:min" and p.bpm == 100
    assert p.intervals[0, 0] == 0 and p.intervals[-1, 1] == pytest.approx(len(p.audio) / SR)
    np.testing.assert_allclose(p.intervals[1:, 0], p.intervals[:-1, 1])
    np.testing.assert_allclose(np.diff(p.intervals, axis=1), 2.4, atol=1e-6)  # 4 beats at 100 BPM


def test_changes_snap_to_a_near_onset_only():
    chords = [ChordSegment(0.0, 1.0, "C:maj"), ChordSegment(1.0, 2.0, "G:maj"), ChordSegment(2.0, 3.0, "C:maj")]
    snapped = snap(chords, np.array([0.96, 2.5]), tolerance=0.1)
    assert [(s.start, s.end) for s in snapped] == [(0.0, 0.96), (0.96, 2.0), (2.0, 3.0)]
    assert chords[0].end == 1.0  # the input is left as it was
