"""`analyze` / `analyze_file`: inputs, settings, the Analysis fields and analysis.json."""

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from melos.audio import AudioError
from melos.sense.analysis import ANALYSIS_RATE, Analysis, Section, analyze, analyze_file

SR = ANALYSIS_RATE


def music(seconds: float = 6.0, sample_rate: int = SR) -> np.ndarray:
    """Clicks at 120 BPM over a 220 Hz tone, a kick on every 4th beat."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    x = 0.2 * np.sin(2 * np.pi * 220 * t)
    for i, beat in enumerate(np.arange(0.5, seconds - 0.2, 0.5)):
        start = round(beat * sample_rate)
        x[start] += 0.8
        if i % 4 == 0:
            n = min(round(0.1 * sample_rate), len(x) - start)
            x[start: start + n] += 0.6 * np.sin(2 * np.pi * 60 * t[:n]) * np.exp(-t[:n] / 0.03)
    return x


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return analyze(music(), SR)


def test_every_field_is_filled(analysis):
    a = analysis
    assert a.sample_rate == SR and a.hop == 0.01 and a.duration == pytest.approx(6.0)
    assert len(a.rms) == 601 and len(a.times) == 601 and a.times[-1] == pytest.approx(6.0)
    assert np.all((a.sharpness >= 0) & (a.sharpness <= 1))
    assert len(a.onsets) == len(a.onset_strength) > 0 and np.all(np.diff(a.onsets) > 0)
    assert len(a.beats) > 0 and len(a.downbeats) > 0 and a.tempo > 0
    assert a.backends == {"onsets": "band-wise-spectral-flux", "beats": "librosa", "downbeats": "bar-phase-heuristic",
                          "stems": "hpss", "chords": "chroma-templates"}
    assert a.sections == []
    assert a.chords[0].start == 0 and a.chords[-1].end == pytest.approx(6.0)
    assert all(prev.end == s.start for prev, s in zip(a.chords, a.chords[1:]))
    assert a.key and 0 <= a.key_confidence <= 1
    assert a.loudness_lufs is not None and -40 < a.loudness_lufs < 0
    assert len(a.short_term_lufs) == 60 and np.all(a.short_term_lufs >= -70)


def test_to_json_round_trips_the_fields(analysis):
    a = replace(analysis, sections=[Section(1.0, 2.5, {"rock": 0.9}, 0.8)])
    data = json.loads(json.dumps(a.to_json()))
    for key, values in (("rms", a.rms), ("low_rms", a.low_rms), ("centroid_hz", a.centroid),
                        ("sharpness", a.sharpness), ("onsets", a.onsets), ("onset_strength", a.onset_strength),
                        ("beats", a.beats), ("downbeats", a.downbeats)):
        np.testing.assert_allclose(data[key], values, atol=5e-6, err_msg=key)
    for name, envelope in a.stems.items():
        np.testing.assert_allclose(data["stems"][name], envelope, atol=5e-6)
    assert (data["sample_rate"], data["hop"], data["duration"]) == (a.sample_rate, a.hop, a.duration)
    assert data["tempo_bpm"] == pytest.approx(a.tempo, abs=1e-3)
    assert data["sections"] == [{"start": 1.0, "end": 2.5, "tags": {"rock": 0.9}, "intensity": 0.8, "density": 1.0}]
    assert data["backends"] == a.backends
    assert data["chords"] == [{"start": pytest.approx(s.start, abs=1e-5), "end": pytest.approx(s.end, abs=1e-5),
                               "label": s.label} for s in a.chords]
    assert (data["key"], data["short_term_rate"]) == (a.key, 10.0)
    assert data["key_confidence"] == pytest.approx(a.key_confidence, abs=1e-4)
    assert data["loudness_lufs"] == pytest.approx(a.loudness_lufs, abs=1e-3)
    np.testing.assert_allclose(data["short_term_lufs"], a.short_term_lufs, atol=5e-4)
    assert replace(a, loudness_lufs=float("-inf")).to_json()["loudness_lufs"] is None  # JSON has no -inf


def test_loudness_is_measured_on_the_channels_the_rest_on_their_mix(analysis):
    x = music()
    stereo = analyze(np.stack([x, x]), SR, stems="none")
    assert stereo.loudness_lufs == pytest.approx(analysis.loudness_lufs + 10 * np.log10(2), abs=0.01)
    assert [c.label for c in stereo.chords] == [c.label for c in analysis.chords]


def test_tensor_stereo_and_other_rates_give_the_same_analysis(analysis):
    x = music()
    stereo = analyze(torch.from_numpy(np.stack([x, x])).float(), SR)
    np.testing.assert_allclose(stereo.rms, analysis.rms, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stereo.onsets, analysis.onsets, atol=1e-3)
    other = analyze(music(sample_rate=44100), 44100)
    assert other.sample_rate == SR and len(other.rms) == len(analysis.rms)
    np.testing.assert_allclose(other.onsets, analysis.onsets, atol=0.003)
    np.testing.assert_allclose(other.beats, analysis.beats, atol=0.003)


def test_a_finer_hop_gives_a_finer_grid():
    a = analyze(music(2.0), SR, hop=0.005, stems="none")
    assert a.hop == 0.005 and len(a.rms) == 401


def test_analyze_file_reads_any_rate_to_mono(tmp_path, analysis):
    path = tmp_path / "song.wav"
    x = music(sample_rate=48000)
    sf.write(path, np.stack([x, x], axis=1).astype(np.float32), 48000)
    a = analyze_file(path)
    assert a.sample_rate == SR and len(a.rms) == len(analysis.rms)
    assert a.loudness_lufs == pytest.approx(analysis.loudness_lufs + 10 * np.log10(2), abs=0.1)  # two channels
    np.testing.assert_allclose(a.onsets, analysis.onsets, atol=0.003)
    with pytest.raises(AudioError):
        analyze_file(tmp_path / "missing.wav")


def test_bad_settings_and_audio_are_refused(tmp_path):
    x = music(1.0)
    with pytest.raises(ValueError, match="hop"):
        analyze(x, SR, hop=0.05)
    with pytest.raises(ValueError, match="min_gap"):
        analyze(x, SR, min_gap=-0.01)
    with pytest.raises(ValueError, match="empty"):
        analyze(np.zeros(0), SR)
    with pytest.raises(ValueError, match="NaN"):
        analyze(np.full(100, np.nan), SR)
    with pytest.raises(ValueError, match=r"\[N\] or \[C, N\]"):
        analyze(np.zeros((1, 2, 3)), SR)
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):  # before the file is decoded
        analyze_file(tmp_path / "missing.wav", beats=f"beat-this:{tmp_path / 'nope.ckpt'}")
