"""Loudness (ITU-R BS.1770-4) against its closed-form calibration: a full-scale 1 kHz sine in one
channel reads -3.01 LUFS, so a 997 Hz sine at -20 dBFS peak reads -23.0 LUFS."""

import numpy as np
import pytest

from melos.sense.loudness import FLOOR, integrated_loudness, short_term_loudness

SR = 48000


def sine(seconds: float = 10.0, peak_db: float = -20.0, sample_rate: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return 10 ** (peak_db / 20) * np.sin(2 * np.pi * 997 * t)


@pytest.mark.parametrize("sample_rate", [SR, 24000])
def test_a_sine_at_minus_20_dbfs_in_one_channel_reads_minus_23_lufs(sample_rate):
    x = sine(sample_rate=sample_rate)
    assert integrated_loudness(x, sample_rate) == pytest.approx(-23.0, abs=0.1)
    assert integrated_loudness(np.stack([x, np.zeros_like(x)]), sample_rate) == pytest.approx(-23.0, abs=0.1)


def test_the_same_sine_in_two_channels_reads_3_db_louder():
    x = sine()
    assert integrated_loudness(np.stack([x, x]), SR) - integrated_loudness(x, SR) == pytest.approx(
        10 * np.log10(2), abs=0.01)


def test_full_scale_reads_minus_3_01_lufs_and_level_is_linear():
    assert integrated_loudness(sine(peak_db=0.0), SR) == pytest.approx(-3.01, abs=0.1)
    assert integrated_loudness(sine(peak_db=-30.0), SR) == pytest.approx(-33.0, abs=0.1)


def test_silence_is_gated_out():
    x = sine(30.0)
    padded = np.concatenate([np.zeros(30 * SR), x, np.zeros(60 * SR)])
    # the -70 LUFS gate drops the silent blocks; the six blocks that straddle an edge stay (-0.04 dB)
    assert integrated_loudness(padded, SR) == pytest.approx(integrated_loudness(x, SR), abs=0.1)
    assert integrated_loudness(np.zeros(SR), SR) == float("-inf")


def test_audio_shorter_than_one_gating_block_has_no_integrated_loudness():
    assert integrated_loudness(sine(0.39), SR) is None
    assert integrated_loudness(sine(0.41), SR) == pytest.approx(-23.0, abs=0.2)
    with pytest.raises(ValueError, match="1-5 channels"):
        integrated_loudness(np.zeros((6, SR)), SR)


def test_short_term_curve_follows_the_level_at_10_hz():
    x = np.concatenate([sine(6.0), sine(6.0, peak_db=-40.0), np.zeros(6 * SR)])
    curve = short_term_loudness(x, SR)
    assert curve.shape == (180,)  # 18 s at 10 Hz
    assert curve[30] == pytest.approx(-23.0, abs=0.1)  # 3 s window wholly inside the loud part
    assert curve[90] == pytest.approx(-43.0, abs=0.1)
    assert curve[150] == FLOOR  # silence reads the floor
    assert curve[0] == pytest.approx(-23.0 - 10 * np.log10(2), abs=0.1)  # half the window before the start
