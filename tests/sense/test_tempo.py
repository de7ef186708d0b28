"""The pieces of the DSP beat tracker's level choice, on curves built by hand."""

import numpy as np
import pytest

from melos.sense.tempo import Envelopes, accent_fit, backbeat, bend

FRAME_RATE = 100


def envelopes(low_times: np.ndarray, mid_times: np.ndarray, seconds: float = 10.0) -> Envelopes:
    """Unit accents in the low band at `low_times` and in the mid band at `mid_times`, none in the full band."""
    low, mid = np.zeros(round(seconds * FRAME_RATE)), np.zeros(round(seconds * FRAME_RATE))
    low[np.round(low_times * FRAME_RATE).astype(int)] = 1.0
    mid[np.round(mid_times * FRAME_RATE).astype(int)] = 1.0
    return Envelopes(np.zeros_like(low), low, mid, sample_rate=24000, hop_length=240)


def test_accent_fit_is_an_f_measure_against_the_accents():
    quarters = np.arange(0.5, 9.5, 0.5)
    e = envelopes(quarters[::2], quarters[1::2])  # kick, snare, kick, snare
    assert accent_fit(quarters, e) == pytest.approx(1.0)
    eighths = np.arange(0.5, 9.25, 0.25)  # 18 of 35 beats on an accent, every accent met
    assert accent_fit(eighths, e) == pytest.approx(2 * (18 / 35) / (18 / 35 + 1))
    halves = quarters[::2]  # every beat on a kick, the snares missed: precision 1, recall 1/2
    assert accent_fit(halves, e) == pytest.approx(2 / 3)
    assert accent_fit(np.zeros(0), e) == 0.0


def test_backbeat_is_kick_and_snare_alternating():
    quarters = np.arange(0.5, 9.5, 0.5)
    assert backbeat(quarters, envelopes(quarters[::2], quarters[1::2])) == pytest.approx(1.0)
    assert backbeat(quarters, envelopes(quarters, np.zeros(0))) == pytest.approx(0.0, abs=0.06)  # all kicks


def test_bend_is_zero_for_a_steady_grid():
    assert bend(np.arange(20) * 0.5) == pytest.approx(0.0)
    uneven = np.cumsum(np.tile([0.3, 0.45], 10))  # 2 + 3 pulses, as an aksak bar bends a slow grid
    assert bend(uneven) == pytest.approx(0.15 / np.diff(uneven).mean())
