"""Harmonic/percussive stems: where a tone and clicks land, and the backend settings."""

import numpy as np
import pytest

from melos.sense.analysis import ANALYSIS_RATE, analyze
from melos.sense.stems import hpss, parse_stems

SR = ANALYSIS_RATE
CLICKS = np.arange(0.5, 3.0, 0.25)


def tone(seconds: float = 3.0) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * SR)) / SR)


def clicks(seconds: float = 3.0) -> np.ndarray:
    x = np.zeros(round(seconds * SR))
    x[np.round(CLICKS * SR).astype(int)] = 1.0
    return x


def energy_share(stems: dict[str, np.ndarray], name: str) -> float:
    total = sum(np.sum(e ** 2) for e in stems.values())
    return float(np.sum(stems[name] ** 2) / total)


def test_a_sustained_tone_is_harmonic():
    a = analyze(tone(), SR)
    assert set(a.stems) == {"harmonic", "percussive"}
    assert energy_share(a.stems, "harmonic") > 0.95


def test_clicks_are_percussive():
    assert energy_share(analyze(clicks(), SR).stems, "percussive") > 0.95


def test_in_a_mix_the_percussive_envelope_peaks_at_the_clicks():
    a = analyze(tone() + clicks(), SR)
    percussive, harmonic = a.stems["percussive"], a.stems["harmonic"]
    at_clicks = np.round(CLICKS / a.hop).astype(int)
    between = np.round((CLICKS[:-1] + 0.125) / a.hop).astype(int)
    assert np.min(percussive[at_clicks]) > 2 * np.max(percussive[between])  # the tone leaks in at -22 dB
    assert np.median(harmonic[between]) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_stems_add_up_to_the_mix():
    x = tone() + clicks()
    stems = hpss(x, SR)
    np.testing.assert_allclose(stems["harmonic"] + stems["percussive"], x, atol=1e-4)


def test_stems_none_gives_no_stems():
    a = analyze(tone(1.0), SR, stems="none")
    assert a.stems == {} and a.backends["stems"] == "none"


def test_stems_setting_is_checked(tmp_path):
    assert parse_stems("hpss") == ("hpss", None)
    with pytest.raises(ValueError, match="checkpoint path"):
        parse_stems("demucs")
    missing = tmp_path / "htdemucs.th"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        analyze(np.zeros(SR), SR, stems=f"demucs:{missing}")
    missing.write_bytes(b"")
    with pytest.raises(ValueError, match="not supported.*never|not supported"):
        parse_stems(f"demucs:{missing}")
    with pytest.raises(ValueError, match="unknown stems backend"):
        parse_stems("spleeter")
