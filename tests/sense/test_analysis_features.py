"""Envelopes, the low band and brightness against closed forms (and librosa for the centroid)."""

import librosa
import numpy as np
import pytest

from melos.sense.analysis import ANALYSIS_RATE, analyze
from melos.sense.features import band_pass, frame_rms, n_frames, sharpness, spectral_centroid, stft_magnitude

SR = ANALYSIS_RATE


def sine(freq: float, seconds: float = 2.0, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(seconds * SR)) / SR)


def test_rms_of_an_am_tone_is_its_envelope_over_root_two_and_not_delayed():
    t = np.arange(3 * SR) / SR
    envelope = 0.5 * (1 + 0.6 * np.sin(2 * np.pi * 2 * t))  # a(t): 2 Hz modulation of a 100 Hz tone
    a = analyze(envelope * np.sin(2 * np.pi * 100 * t), SR, stems="none")
    expected = 0.5 * (1 + 0.6 * np.sin(2 * np.pi * 2 * a.times)) / np.sqrt(2)
    inner = slice(5, -5)  # the ends see half a window
    assert np.max(np.abs(a.rms - expected)[inner]) < 0.01 * expected.max()
    assert np.max(np.abs(a.low_rms - expected)[inner]) < 0.03 * expected.max()  # 100 Hz is in the band
    lags = range(-5, 6)
    for curve in (a.rms, a.low_rms):  # the best-matching shift of the curve is 0 frames
        error = [np.sum((np.roll(curve, k) - expected)[20:-20] ** 2) for k in lags]
        assert lags[int(np.argmin(error))] == 0


def test_low_band_keeps_100_hz_and_rejects_1_khz():
    low = analyze(sine(100), SR, stems="none")
    high = analyze(sine(1000), SR, stems="none")
    inner = slice(20, -20)  # the zero-phase filter rings in at the ends
    assert np.median(low.low_rms[inner] / low.rms[inner]) == pytest.approx(1.0, abs=0.03)
    assert np.median(high.low_rms[inner] / high.rms[inner]) < 0.01


def test_band_pass_is_zero_phase():
    x = sine(150, seconds=1.0)
    y = band_pass(x, SR)
    lag = np.argmax(np.correlate(y[SR // 4: -SR // 4], x[SR // 4 - 50: -SR // 4 + 50], mode="valid")) - 50
    assert lag == 0


@pytest.mark.parametrize("freq", [250.0, 1000.0, 4000.0])
def test_centroid_of_a_sine_is_its_frequency(freq):
    a = analyze(sine(freq), SR, stems="none")
    assert np.median(a.centroid[5:-5]) == pytest.approx(freq, rel=0.02)


def test_centroid_of_two_tones_is_the_magnitude_weighted_mean():
    # On STFT bins (k * 24000 / 1024 Hz) each tone's Hann main lobe has the same magnitude sum, so
    # the centroid is exactly (a1 f1 + a2 f2) / (a1 + a2); off-bin tones scallop by a few percent.
    f1, f2 = 20 * SR / 1024, 120 * SR / 1024  # 468.75 Hz, 2812.5 Hz
    x = sine(f1, amplitude=0.5) + sine(f2, amplitude=0.25)
    a = analyze(x, SR, stems="none")
    assert np.median(a.centroid[5:-5]) == pytest.approx((0.5 * f1 + 0.25 * f2) / 0.75, rel=1e-3)


def test_centroid_matches_librosa():
    x = sine(700) + 0.3 * np.random.default_rng(0).standard_normal(2 * SR)
    magnitude = stft_magnitude(x, 1024, 240)
    reference = librosa.feature.spectral_centroid(S=magnitude, sr=SR, n_fft=1024)[0]
    np.testing.assert_allclose(spectral_centroid(magnitude, SR), reference, rtol=1e-4)


def test_sharpness_is_log_frequency_between_100_hz_and_8_khz():
    values = sharpness(np.array([0.0, 50.0, 100.0, np.sqrt(100 * 8000), 8000.0, 11000.0]))
    np.testing.assert_allclose(values, [0.0, 0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-9)


def test_silence_has_zero_centroid_and_sharpness():
    a = analyze(np.zeros(SR), SR, stems="none")
    assert not a.centroid.any() and not a.sharpness.any() and not a.rms.any()


@pytest.mark.parametrize("n_samples", [1, 239, 240, 12345, SR + 17])
def test_every_curve_is_on_one_frame_grid(n_samples):
    x = np.random.default_rng(n_samples).standard_normal(n_samples) * 0.1
    assert len(frame_rms(x, 240, 480)) == n_frames(n_samples, 240) == stft_magnitude(x, 1024, 240).shape[1]
    a = analyze(x, SR)
    assert {len(a.rms), len(a.low_rms), len(a.centroid), len(a.sharpness), *map(len, a.stems.values())} == \
        {n_frames(n_samples, 240)}
