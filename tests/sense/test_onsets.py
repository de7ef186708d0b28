"""Onsets against known event times, scored with mir_eval; the density gate and the refinement."""

import mir_eval
import numpy as np
import pytest

from melos.data.synth.drum_loop import drum_loop
from melos.sense.analysis import ANALYSIS_RATE, analyze
from melos.sense.features import stft_magnitude
from melos.sense.mapping import PRESETS, to_track
from melos.sense.onsets import BANDS, attack_envelope, band_bins, band_presence, density_gate, refine

SR = ANALYSIS_RATE


def jittered_times(n: int = 60, seed: int = 0) -> np.ndarray:
    """Event times 150-450 ms apart at random, from 0.5 s."""
    return 0.5 + np.concatenate([[0.0], np.cumsum(np.random.default_rng(seed).uniform(0.15, 0.45, n - 1))])


def click_train(times: np.ndarray, seed: int = 0) -> np.ndarray:
    """Unit clicks at `times` over a -80 dB noise floor."""
    x = 1e-4 * np.random.default_rng(seed).standard_normal(round((times[-1] + 1) * SR))
    x[np.round(times * SR).astype(int)] += 1.0
    return x


def noise_bursts(times: np.ndarray, seed: int = 0) -> np.ndarray:
    """White-noise bursts at `times`: random level (-14..0 dB), 30 ms exponential decay, faded out."""
    rng = np.random.default_rng(seed)
    x = 1e-4 * rng.standard_normal(round((times[-1] + 1) * SR))
    n = round(0.3 * SR)
    shape = np.exp(-np.arange(n) / (0.03 * SR)) * np.minimum(1.0, (n - np.arange(n)) / (0.1 * SR))
    for t in times:
        start = round(t * SR)
        x[start: start + n] += rng.uniform(0.2, 1.0) * rng.standard_normal(n) * shape
    return x


def timing(reference: np.ndarray, estimated: np.ndarray, window: float = 0.025) -> tuple[float, np.ndarray]:
    """mir_eval onset F-measure and the signed errors (s) of the matched pairs."""
    f_measure = mir_eval.onset.f_measure(reference, estimated, window=window)[0]
    pairs = mir_eval.util.match_events(reference, estimated, window)
    return f_measure, np.array([estimated[j] - reference[i] for i, j in pairs])


@pytest.mark.parametrize("make", [click_train, noise_bursts])
@pytest.mark.parametrize("seed", [0, 1])
def test_onsets_are_found_on_time(make, seed):
    reference = jittered_times(seed=seed)
    a = analyze(make(reference, seed), SR, stems="none")
    f_measure, errors = timing(reference, a.onsets)
    assert f_measure >= 0.95
    assert abs(np.median(errors)) <= 0.005  # never systematically late (or early)
    assert np.percentile(np.abs(errors), 95) <= 0.020
    assert np.all((a.onset_strength > 0) & (a.onset_strength <= 1))


def test_onsets_do_not_depend_on_level():
    reference = jittered_times(20)
    x = noise_bursts(reference)
    np.testing.assert_allclose(analyze(0.01 * x, SR, stems="none").onsets, analyze(x, SR, stems="none").onsets)


def test_onsets_at_another_sample_rate_are_at_the_same_times():
    reference = jittered_times(20)
    x = noise_bursts(reference)
    t = np.arange(round(len(x) * 44100 / SR)) / 44100
    resampled = np.interp(t, np.arange(len(x)) / SR, x)  # crude, but it keeps the attacks in place
    _, errors = timing(reference, analyze(resampled, 44100, stems="none").onsets)
    # The resampler's linear-phase filter rings a little ahead of each attack: up to a few ms early.
    assert len(errors) == len(reference) and abs(np.median(errors)) < 0.002 and np.max(np.abs(errors)) < 0.005


def test_density_gate_keeps_the_stronger_of_close_onsets():
    times, strength = np.array([1.0, 1.03, 1.2]), np.array([0.3, 1.0, 0.5])
    assert density_gate(times, strength, 0.05).tolist() == [1, 2]
    assert density_gate(times, strength, 0.2).tolist() == [1]
    assert density_gate(times, strength, 0.0).tolist() == [0, 1, 2]
    assert density_gate(np.zeros(0), np.zeros(0), 0.08).tolist() == []


def clicks_at(*clicks: tuple[float, float]) -> np.ndarray:
    """Two seconds of a -80 dB noise floor with clicks given as (time, amplitude)."""
    x = 1e-4 * np.random.default_rng(0).standard_normal(2 * SR)
    for time, amplitude in clicks:
        x[round(time * SR)] += amplitude
    return x


def test_two_clicks_30_ms_apart_give_one_onset_with_a_50_ms_gate():
    a = analyze(clicks_at((1.0, 1.0), (1.03, 0.5)), SR, min_gap=0.05, stems="none")
    assert len(a.onsets) == 1 and a.onsets[0] == pytest.approx(1.0, abs=0.001)


def test_the_gate_keeps_the_later_onset_when_it_is_stronger():
    x = clicks_at((1.0, 0.3), (1.05, 1.0))
    assert analyze(x, SR, min_gap=0.04, stems="none").onsets == pytest.approx([1.0, 1.05], abs=0.001)
    assert analyze(x, SR, min_gap=0.08, stems="none").onsets == pytest.approx([1.05], abs=0.001)


@pytest.mark.parametrize("offset", [-0.025, -0.01, 0.0, 0.012, 0.025])
def test_refinement_finds_the_attack_from_a_coarse_time_nearby(offset):
    x = 1e-4 * np.random.default_rng(0).standard_normal(SR)
    x[12000:] += np.random.default_rng(1).standard_normal(SR - 12000) * np.exp(-np.arange(SR - 12000) / 1000)
    rise, times = attack_envelope(x, SR)
    assert refine(np.array([0.5 + offset]), rise, times)[0] == pytest.approx(0.5, abs=0.001)


def test_refinement_keeps_the_coarse_time_without_an_attack():
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)  # steady: nothing rises
    rise, times = attack_envelope(x, SR)
    assert refine(np.array([0.5]), rise, times)[0] == 0.5


def test_silence_has_no_onsets():
    a = analyze(np.zeros(2 * SR), SR, stems="none")
    assert len(a.onsets) == 0 and len(a.onset_strength) == 0


def test_stationary_noise_has_no_onsets_after_its_start():
    """White noise at a steady level: its flux fluctuates by about 1.3x its median, below the
    ratio test, so only the file's start (sound from nothing, at full level) is an onset."""
    a = analyze(0.1 * np.random.default_rng(0).standard_normal(4 * SR), SR, stems="none")
    assert np.all(a.onsets < 0.01), a.onsets


def test_a_quiet_start_is_not_an_onset_but_a_loud_one_is():
    times = np.array([0.5, 1.5, 2.5])
    floor = 1e-3 * np.random.default_rng(1).standard_normal(3 * SR)  # -60 dB hiss, then bursts
    np.testing.assert_allclose(analyze(floor + noise_bursts(times)[:3 * SR], SR, stems="none").onsets, times,
                               atol=0.005)
    t = np.arange(3 * SR) / SR
    chord = 0.3 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))  # sounds from 0 s
    onsets = analyze(chord + noise_bursts(times)[:3 * SR], SR, stems="none").onsets
    assert onsets[0] < 0.01 and len(onsets) == 4


def recall(reference: np.ndarray, estimated: np.ndarray, window: float = 0.025) -> float:
    return len(mir_eval.util.match_events(reference, estimated, window)) / len(reference)


@pytest.mark.parametrize("bpm,kick_db", [(90, -12), (120, -18), (150, -12)])
def test_every_hit_of_a_drum_loop_is_a_transient_the_kick_under_the_snare_too(bpm, kick_db):
    """Full-band flux found a 60 Hz kick 12-18 dB under a snare in 2 of 32 hits; per band, each
    band normalised on its own, every kick, snare and hat is found within 25 ms."""
    loop = drum_loop(bpm, 10.0, kick_db=kick_db)
    track = to_track(analyze(loop.audio, loop.sample_rate, stems="none"))
    taps = np.array([t.time for t in track.transients if t.layer == "onset"])
    assert recall(loop.hits["kick"], taps) >= 0.9
    assert recall(loop.hits["snare"], taps) >= 0.95 and recall(loop.hits["hat"], taps) >= 0.95
    every_hit = np.sort(np.concatenate(list(loop.hits.values())))
    assert mir_eval.onset.f_measure(every_hit, taps, window=0.025)[1] >= 0.95  # precision: nothing else


def test_low_band_hits_get_the_strongest_taps_in_every_preset():
    loop = drum_loop(120.0, 8.0, kick_db=-12)
    a = analyze(loop.audio, loop.sample_rate)
    for preset in PRESETS:
        transients = [t for t in to_track(a, preset).transients if t.layer == "onset"]
        times, levels = np.array([t.time for t in transients]), np.array([t.intensity for t in transients])

        def level(name: str) -> float:
            pairs = mir_eval.util.match_events(loop.hits[name], times, 0.025)
            assert len(pairs) >= 0.9 * len(loop.hits[name]), (preset, name)  # a preset never drops a kick
            return float(np.median([levels[j] for _, j in pairs]))

        assert level("kick") > level("snare") > level("hat"), preset


def test_a_band_the_music_does_not_use_is_not_present():
    """Hats alone (6-11 kHz): their click leaks into the low band 40 dB down, which is not music
    there (real mixes keep every band within 25 dB of the loudest), so it weighs nothing."""
    loop = drum_loop(120.0, 4.0, kick_db=-200, snare_peak=1e-9, hat_db=180)  # the hats at 0.9 peak alone
    magnitude = stft_magnitude(loop.audio.astype(float), 1024, 240)
    presence = band_presence(magnitude, [band_bins(b, 1024, SR) for b in BANDS.values()])
    assert presence[0] < 0.05 and presence[2] == 1
    a = analyze(loop.audio, loop.sample_rate, stems="none")
    assert np.all(a.onset_bands[:, 0] < 0.05) and recall(loop.hits["hat"], a.onsets) == 1.0
