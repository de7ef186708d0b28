"""Analysis -> haptic track: which part of the music drives which layer, checked on a hand-made analysis."""

import numpy as np
import pytest

from melos.sense.analysis import Analysis, Section
from melos.sense.harmony import ChordSegment
from melos.sense.mapping import BEAT_CEILING, BED_STEP, PRESETS, to_track


def analysis(**changes) -> Analysis:
    """4 s at a 10 ms hop: a low band rising linearly, onsets at 0.5/1.0/2.0 s, beats every 0.5 s."""
    n = 401
    fields = dict(sample_rate=22050, duration=4.0, hop=0.01, rms=np.full(n, 0.2), low_rms=np.linspace(0, 0.4, n),
                  centroid=np.full(n, 1000.0), sharpness=np.linspace(0, 1, n), onsets=np.array([0.5, 1.0, 2.0]),
                  onset_strength=np.array([1.0, 0.5, 0.05]), beats=np.arange(0.5, 4.0, 0.5),
                  downbeats=np.array([0.5, 2.5]), tempo=120.0)
    return Analysis(**(fields | changes))


def test_onsets_become_transients_with_strength_accent_and_sharpness():
    track = to_track(analysis(), "default")
    p = PRESETS["default"]
    onsets = [t for t in track.transients if t.layer == "onset"]
    assert [t.time for t in onsets] == [0.5, 1.0, 2.0]  # every onset is felt, the weak one too
    assert onsets[0].intensity == pytest.approx(min(1.0, p.transient_gain * 1.0 * p.downbeat_accent))  # a downbeat
    assert onsets[1].intensity == pytest.approx(p.transient_gain * 0.5)
    assert onsets[1].sharpness == pytest.approx(100 / 400)  # the sharpness curve at frame 100


def test_beats_without_an_onset_become_softer_transients():
    track = to_track(analysis(), "default")
    p = PRESETS["default"]
    taps = [t.intensity for t in track.transients if t.layer == "onset"]
    median = np.median(taps)  # by hand: 0.9 * 1.25 clipped to 1, 0.45, 0.045 -> 0.45
    assert median == pytest.approx(0.45)
    beats = [(t.time, t.layer, t.intensity) for t in track.transients if t.layer != "onset"]
    assert [b[0] for b in beats] == [1.5, 2.5, 3.0, 3.5]  # 0.5, 1.0 and 2.0 already have onsets
    assert beats[1] == (2.5, "downbeat", pytest.approx(min(p.beat_gain * p.downbeat_accent, BEAT_CEILING) * median))
    assert beats[0][2] == pytest.approx(p.beat_gain * median)
    for name in PRESETS:  # the README's promise: a beat tap is softer than the median onset tap
        t = to_track(analysis(), name).transients
        onset_median = np.median([x.intensity for x in t if x.layer == "onset"])
        assert all(x.intensity < onset_median for x in t if x.layer != "onset")
    assert not [t for t in to_track(analysis(), "subtle").transients if t.layer != "onset"]  # subtle: no beat taps


def test_a_loud_section_does_not_lift_a_beat_tap_above_the_median_onset_tap():
    loud = Section(1.2, 4.0, intensity=1.5)  # the beats at 1.5-3.5 s; the onsets at 0.5, 1.0 s unscaled
    for name in ("default", "punchy"):
        t = to_track(analysis(sections=[loud]), name).transients
        median = np.median([x.intensity for x in t if x.layer == "onset"])
        beats = [x.intensity for x in t if x.layer != "onset"]
        assert beats and max(beats) == pytest.approx(BEAT_CEILING * median)  # 1.5x would have passed it


def test_presets_change_intensities_never_which_onsets_are_felt():
    weak = analysis(onset_strength=np.array([0.02, 0.01, 0.05]))
    times = {name: [t.time for t in to_track(weak, name).transients if t.layer == "onset"] for name in PRESETS}
    assert all(t == [0.5, 1.0, 2.0] for t in times.values())


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_density_gate_holds_for_every_pair_beat_taps_included(preset):
    onsets = np.array([0.3, 0.62, 1.1, 1.93, 2.6, 3.3])  # 0.08 s apart at least, some close to a beat
    a = analysis(onsets=onsets, onset_strength=np.full(len(onsets), 0.5), beats=np.arange(0.25, 4.0, 0.25),
                 min_gap=0.08)
    times = np.array([t.time for t in to_track(a, preset).transients])
    assert np.all(np.diff(times) >= 0.08 - 1e-9), np.diff(times).min()


def test_the_bed_follows_the_low_band_and_the_sharpness():
    track = to_track(analysis(), "default")
    c = track.continuous
    assert c.times[0] == 0 and c.times[-1] == 4.0 and np.allclose(np.diff(c.times[:-1]), BED_STEP)
    top = np.percentile(np.linspace(0, 0.4, 401), 95)
    expected = PRESETS["default"].bed_gain * np.clip(np.linspace(0, 0.4, 401) / top, 0, 1)
    frames = np.round(c.times / 0.01).astype(int)
    assert np.allclose(c.amplitude, expected[frames])
    assert np.allclose(c.frequency, np.linspace(0, 1, 401)[frames])


def test_percussive_stem_weights_transients_and_sections_scale_both_layers():
    perc = np.where(np.arange(401) >= 80, 1.0, 0.0)  # drums from 0.8 s: the 1.0 s onset has them, 0.5 s none
    track = to_track(analysis(stems={"percussive": perc}, downbeats=np.array([])), "default")
    onsets = {t.time: t.intensity for t in track.transients if t.layer == "onset"}
    gain = PRESETS["default"].transient_gain
    assert onsets[0.5] == pytest.approx(gain * 1.0 * 0.5) and onsets[1.0] == pytest.approx(gain * 0.5 * 1.0)
    quiet = to_track(analysis(sections=[Section(0.0, 1.2, intensity=0.5)]), "default")
    loud = to_track(analysis(), "default")
    assert quiet.transients[1].intensity == pytest.approx(0.5 * loud.transients[1].intensity)  # [0] is clipped at 1
    assert np.allclose(quiet.continuous.amplitude[:50], 0.5 * loud.continuous.amplitude[:50])
    assert np.allclose(quiet.continuous.amplitude[70:], loud.continuous.amplitude[70:])


def test_unknown_preset_and_silence():
    with pytest.raises(ValueError, match="preset must be one of"):
        to_track(analysis(), "loud")
    silent = to_track(analysis(low_rms=np.zeros(401), onsets=np.array([]), onset_strength=np.array([]),
                               beats=np.array([]), downbeats=np.array([])))
    assert not silent.transients and not silent.continuous.amplitude.any()


def test_a_sparse_section_keeps_its_strongest_onsets_and_no_beat_taps():
    many = np.arange(0.1, 4.0, 0.2)  # 20 onsets, strengths rising with time
    strength = np.linspace(0.2, 1.0, len(many))
    dense = to_track(analysis(onsets=many, onset_strength=strength, downbeats=np.array([])), "default")
    sparse = to_track(analysis(onsets=many, onset_strength=strength, downbeats=np.array([]),
                               sections=[Section(0.0, 2.0, density=0.5), Section(2.0, 4.0)]), "default")
    first = [t.time for t in sparse.transients if t.time < 2.0]
    np.testing.assert_allclose(first, many[5:10])  # the 5 strongest of the first 10 onsets, no beat taps
    assert [t for t in sparse.transients if t.time >= 2.0] == [t for t in dense.transients if t.time >= 2.0]


def test_an_onset_at_a_chord_change_is_softly_accented():
    chords = [ChordSegment(0.0, 0.98, "C:maj"), ChordSegment(0.98, 2.02, "A:min"), ChordSegment(2.02, 4.0, "A:min")]
    for preset in PRESETS:
        p = PRESETS[preset]
        accented = {t.time: t.intensity for t in to_track(analysis(chords=chords), preset).transients
                    if t.layer == "onset"}
        plain = {t.time: t.intensity for t in to_track(analysis(), preset).transients if t.layer == "onset"}
        assert accented[1.0] == pytest.approx(min(1.0, plain[1.0] * p.chord_accent))  # 20 ms from the change
        assert accented[0.5] == plain[0.5]  # no change near: the first segment's start is no change
        assert accented[2.0] == plain[2.0]  # 20 ms from a boundary, but A:min -> A:min is no change
    assert PRESETS["default"].chord_accent == pytest.approx(1.15) and PRESETS["subtle"].chord_accent == 1.0
