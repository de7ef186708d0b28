"""Voice-coil drive: carrier at the resonance, energy in 40-400 Hz, bursts, the 8 kHz WAV."""

import numpy as np
import pytest
import soundfile as sf

from melos.sense.export import drive
from melos.sense.export.drive import band_share, render_drive, validate_drive, write_drive
from melos.sense.track import Continuous, HapticTrack, Transient


def _bed(duration, amplitude, transients=()):
    times = np.linspace(0, duration, len(amplitude))
    return HapticTrack(duration, list(transients), Continuous(times, np.asarray(amplitude, float),
                                                             np.full(len(amplitude), 0.5)))


def _peak_hz(signal, sample_rate):
    spectrum = np.abs(np.fft.rfft(signal))
    return np.fft.rfftfreq(len(signal), 1 / sample_rate)[spectrum.argmax()]


@pytest.mark.parametrize("carrier_hz", [150.0, 170.0, 250.0])
def test_the_spectrum_peaks_at_the_carrier_with_the_energy_in_band(carrier_hz):
    signal = render_drive(_bed(2.0, [0.5, 0.5]), 8000, carrier_hz)
    assert signal.dtype == np.float32 and signal.shape == (16000,)
    assert _peak_hz(signal, 8000) == pytest.approx(carrier_hz, abs=0.5)
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / 8000)
    assert power[(freqs >= 40) & (freqs <= 400)].sum() / power.sum() > 0.99
    assert np.abs(signal).max() == pytest.approx(0.5, abs=1e-3)


def test_the_amplitude_follows_the_envelope():
    signal = render_drive(_bed(1.0, [0.0, 1.0]), 8000)  # a linear ramp
    rms = np.sqrt(np.mean(signal.reshape(10, 800).astype(float) ** 2, axis=1))  # 100 ms windows
    np.testing.assert_allclose(rms * np.sqrt(2), np.arange(10) / 10 + 0.05, atol=0.01)


def test_a_transient_is_a_short_burst_with_a_fast_attack():
    track = HapticTrack(1.0, [Transient(0.5, 0.8, 0.5)])
    signal = render_drive(track, 8000, burst_s=0.015)
    active = np.flatnonzero(signal)
    assert active[0] >= 4000 and active[-1] < 4000 + 120  # within 15 ms of the transient
    assert np.abs(signal).max() <= 0.8 and np.abs(signal[4000:4040]).max() > 0.6  # strong in 5 ms
    validate_drive(signal, 8000)


def test_a_burst_over_the_bed_takes_the_louder_and_the_peak_stays_at_most_1():
    track = _bed(1.0, [1.0, 1.0], [Transient(0.2 + 0.1 * i, 1.0, 0.5) for i in range(8)])
    signal = render_drive(track, 8000)
    assert np.abs(signal).max() <= 1.0
    validate_drive(signal, 8000)


def test_the_same_signal_renders_at_the_audio_rate():
    signal = render_drive(_bed(1.0, [0.3, 0.3], [Transient(0.5, 1.0, 0.5)]), 44100)
    assert signal.shape == (44100,) and _peak_hz(signal, 44100) == pytest.approx(170, abs=1)
    validate_drive(signal, 44100, require_rate=None)


@pytest.mark.parametrize("kwargs, message", [({"carrier_hz": 149.0}, "carrier_hz"),
                                             ({"carrier_hz": 251.0}, "carrier_hz"),
                                             ({"burst_s": 0.03}, "burst_s")])
def test_out_of_range_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_drive(_bed(1.0, [0.5, 0.5]), 8000, **kwargs)


def test_write_drive_is_8_khz_mono_and_valid(tmp_path):
    path = write_drive(_bed(1.5, [0.2, 0.9], [Transient(0.7, 1.0, 0.5)]), tmp_path / "d.wav", carrier_hz=200)
    signal, rate = sf.read(path)
    assert rate == 8000 and signal.ndim == 1 and len(signal) == 12000
    assert _peak_hz(signal, rate) == pytest.approx(200, abs=1)
    validate_drive(signal, rate)


def test_a_failing_validator_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(drive, "render_drive", lambda *a: np.full(800, 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match="peak"):
        drive.write_drive(_bed(0.1, [0.5, 0.5]), tmp_path / "d.wav")
    assert list(tmp_path.iterdir()) == []


def test_band_share_of_tones():
    t = np.arange(8000) / 8000
    assert band_share(np.sin(2 * np.pi * 100 * t), 8000) > 0.999
    assert band_share(np.sin(2 * np.pi * 1000 * t), 8000) < 0.001
    assert band_share(np.zeros(100), 8000) == 1.0


def _tone(hz=170.0, n=8000):
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(n) / 8000)).astype(np.float32)


@pytest.mark.parametrize("signal, rate, message", [
    (_tone(), 16000, "sample rate 16000"),
    (np.stack([_tone(), _tone()], axis=1), 8000, "must be mono"),
    (np.r_[_tone(), np.nan], 8000, "sample 8000 is not finite"),
    (_tone() * 3, 8000, "peak 1.5"),
    (_tone(1000.0), 8000, "energy inside 40-400 Hz"),
    (np.random.default_rng(0).uniform(-0.5, 0.5, 8000), 8000, "energy inside 40-400 Hz"),
])
def test_validator_rejects_each_broken_rule(signal, rate, message):
    validate_drive(_tone(), 8000)
    with pytest.raises(ValueError, match=message):
        validate_drive(signal, rate)
