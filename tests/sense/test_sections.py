"""Sections from encoder embeddings: the checkerboard kernel, novelty, boundaries, the intensity
rule, and `melos sense --model` (and `--probe`) end to end."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from melos import load_encoder
from melos.cli import main
from melos.sense.sections import boundaries, checkerboard, intensities, novelty, window_embeddings

SR = 22050


def two_states(n_a: int = 20, n_b: int = 20, dim: int = 8) -> np.ndarray:
    """n_a windows of one unit vector, then n_b of an orthogonal one, [W, H]."""
    e = np.zeros((n_a + n_b, dim))
    e[:n_a, 0] = 1.0
    e[n_a:, 1] = 1.0
    return e


def test_checkerboard_by_hand():
    k = checkerboard(4)
    assert k.shape == (4, 4) and np.abs(k).sum() == pytest.approx(1.0) and k.sum() == pytest.approx(0.0)
    signs = np.array([[1, 1, -1, -1], [1, 1, -1, -1], [-1, -1, 1, 1], [-1, -1, 1, 1]])
    np.testing.assert_array_equal(np.sign(k), signs)  # same side +, across the centre -
    np.testing.assert_allclose(k, k.T)
    assert k[1, 1] > k[0, 0] and k[1, 1] == pytest.approx(k[2, 2])  # the Gaussian taper peaks at the centre
    with pytest.raises(ValueError, match="even"):
        checkerboard(5)


def test_novelty_peaks_at_the_change_and_a_constant_sequence_has_none():
    n = novelty(two_states(), kernel=8)
    assert n.shape == (40,) and int(np.argmax(n)) == 20 and n[20] == pytest.approx(1.0)
    assert np.abs(novelty(np.ones((40, 8)), kernel=8)).max() < 1e-12
    times = np.arange(40) + 1.0  # window centres, 2 s windows every 1 s
    assert boundaries(n, times, min_section=8.0) == [pytest.approx(20.5)]  # between windows 19 and 20
    assert boundaries(novelty(np.ones((40, 8))), times) == []


def test_boundaries_keep_min_section_apart_and_from_the_ends():
    e = np.zeros((40, 8))
    e[:15, 0], e[15:20, 1], e[20:, 2] = 1.0, 1.0, 1.0  # 15 windows of A, 5 of B, 20 of C
    n, times = novelty(e, kernel=4), np.arange(40) + 1.0
    assert boundaries(n, times, min_section=3.0) == [pytest.approx(15.5), pytest.approx(20.5)]
    assert len(boundaries(n, times, min_section=8.0)) == 1  # the two changes are only 5 s apart
    assert boundaries(novelty(two_states(3, 37), kernel=4), times, min_section=8.0) == []  # 3.5 s from the start


def test_intensity_rule_on_hand_made_envelopes():
    hop = 0.5
    rms = np.concatenate([np.full(20, 0.1), np.full(20, 0.5), np.full(20, 0.3)])  # mean 0.3
    assert intensities(rms, hop, [0.0, 10.0, 20.0, 30.0]) == pytest.approx([0.6, 1.3, 1.0])  # 1/3 and 5/3 clipped
    bursts = np.tile([1.0, 0.0, 0.0, 0.0], 10)  # sparse hits: a median would rate the quiet half 1.0
    assert intensities(np.concatenate([np.full(40, 0.1), bursts]), hop, [0.0, 20.0, 40.0]) == pytest.approx(
        [0.6, 1.3])  # 0.1 / 0.175 and 0.25 / 0.175, clipped
    rms = np.concatenate([np.full(20, 0.18), np.full(20, 0.2), np.full(20, 0.22)])
    assert intensities(rms, hop, [0.0, 10.0, 20.0, 30.0]) == pytest.approx([0.9, 1.0, 1.1])
    assert intensities(rms, hop, [0.0, 30.0]) == [1.0]  # one section: nothing to contrast
    assert intensities(np.zeros(60), hop, [0.0, 10.0, 30.0]) == [1.0, 1.0]  # silence


def quiet_then_loud(seconds: float = 12.0, sr: int = SR) -> np.ndarray:
    """`seconds` of a quiet 440 Hz sine, then `seconds` of loud noise bursts every 0.25 s."""
    t = np.arange(int(seconds * sr)) / sr
    quiet = 0.05 * np.sin(2 * np.pi * 440 * t)
    loud = np.zeros_like(quiet)
    rng = np.random.default_rng(0)
    for k in range(0, len(loud) - 2000, sr // 4):
        loud[k:k + 2000] = 0.8 * rng.standard_normal(2000) * np.exp(-np.arange(2000) / 400)
    return np.concatenate([quiet, loud]).astype(np.float32)


def test_window_embeddings_batch_equals_one_at_a_time():
    torch.manual_seed(0)
    encoder = load_encoder("mert-tiny")
    audio = quiet_then_loud(3.0)  # 6 s: windows at 0..4 s, the last one full
    times, batched = window_embeddings(audio, SR, encoder, window=2.0, hop=1.0, batch_size=16)
    _, alone = window_embeddings(audio, SR, encoder, window=2.0, hop=1.0, batch_size=1)
    np.testing.assert_allclose(times, [1.0, 2.0, 3.0, 4.0, 5.0], atol=1e-4)
    assert batched.shape == (5, encoder.hidden_size)
    np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-5)
    times, short = window_embeddings(audio[:int(2.5 * SR)], SR, encoder)  # a last, shorter window
    np.testing.assert_allclose(times, [1.0, 1.75], atol=1e-4)


def test_sense_with_a_model_finds_the_change_and_the_quiet_section_is_gentler(tmp_path, capsys):
    torch.manual_seed(0)
    sf.write(tmp_path / "song.wav", quiet_then_loud(), SR)
    out = tmp_path / "haptics"
    assert main(["sense", str(tmp_path / "song.wav"), "--out", str(out), "--model", "mert-tiny", "--formats", "ahap",
                 "--no-progress"]) == 0
    sections = json.loads((out / "song.wav" / "analysis.json").read_text())["sections"]
    assert len(sections) == 2, sections
    assert sections[0]["start"] == 0 and sections[-1]["end"] == pytest.approx(24.0, abs=0.01)
    assert sections[0]["end"] == sections[1]["start"] == pytest.approx(12.0, abs=2.0)
    assert sections[0]["intensity"] < 1.0 < sections[1]["intensity"]
    assert sections[0]["density"] == pytest.approx(max(0.5, sections[0]["intensity"]), abs=1e-3)
    assert sections[1]["density"] == 1.0  # the louder half keeps every transient
    assert sections[0]["tags"] == {}


def test_sense_with_a_probe_tags_each_section(tmp_path, capsys, tone_task):
    """melos probe on low vs high tones, then melos sense with its probe: the low section is
    tagged "low", the high one "high"."""
    torch.manual_seed(0)
    load_encoder("mert-tiny").save_pretrained(tmp_path / "model")  # one set of random weights for both
    task = tone_task(tmp_path, "multiclass")
    assert main(["probe", "--model", str(tmp_path / "model"), "--task", str(task), "--out", str(tmp_path / "r"),
                 "--cache", str(tmp_path / "cache"), "--seeds", "1", "--epochs", "8", "--no-progress"]) == 0
    probe = tmp_path / "r" / "probes" / "0-tones-multiclass.safetensors"
    t = np.arange(12 * 24000) / 24000
    song = np.concatenate([0.3 * np.sin(2 * np.pi * 120 * t), 0.3 * np.sin(2 * np.pi * 2000 * t)])
    sf.write(tmp_path / "song.wav", song.astype(np.float32), 24000)
    out = tmp_path / "haptics"
    assert main(["sense", str(tmp_path / "song.wav"), "--out", str(out), "--model", str(tmp_path / "model"),
                 "--probe", str(probe), "--formats", "ahap", "--no-progress"]) == 0
    sections = json.loads((out / "song.wav" / "analysis.json").read_text())["sections"]
    assert len(sections) == 2, sections
    low, high = (s["tags"] for s in sections)
    assert set(low) == set(high) == {"low", "high"}
    assert low["low"] > 0.5 > low["high"] and high["high"] > 0.5 > high["low"], sections
    assert low["low"] + low["high"] == pytest.approx(1.0, abs=2e-3)


def test_probe_errors(tmp_path, capsys, tone_task):
    sf.write(tmp_path / "song.wav", quiet_then_loud(1.0), SR)
    assert main(["sense", str(tmp_path / "song.wav"), "--out", str(tmp_path / "h"), "--probe", str(tmp_path / "p"),
                 "--no-progress"]) == 2
    assert "needs --model" in capsys.readouterr().err
    torch.manual_seed(0)
    task = tone_task(tmp_path, "multiclass")
    assert main(["probe", "--model", "mert-tiny", "--task", str(task), "--out", str(tmp_path / "r"), "--cache",
                 str(tmp_path / "cache"), "--seeds", "1", "--epochs", "1", "--no-progress"]) == 0
    probe = tmp_path / "r" / "probes" / "0-tones-multiclass.safetensors"
    load_encoder("mert-tiny", seed=1).save_pretrained(tmp_path / "other")  # not the encoder the probe was trained on
    assert main(["sense", str(tmp_path / "song.wav"), "--out", str(tmp_path / "h"), "--model", str(tmp_path / "other"),
                 "--probe", str(probe), "--no-progress"]) == 2
    assert "trained on another encoder" in capsys.readouterr().err
    assert not (tmp_path / "h" / "song.wav").exists()
