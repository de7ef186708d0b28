"""Beats, downbeats and tempo of constructed rhythms and drum loops; backend selection and its errors; Beat This!."""

import ast
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import mir_eval
import numpy as np
import pytest
import torch

from melos.data.synth.drum_loop import drum_loop
from melos.sense import beat_this_backend
from melos.sense.analysis import ANALYSIS_RATE, analyze
from melos.sense.beat_this_backend import BEAT_THIS_NEEDS
from melos.sense.beats import bar_phase_downbeats, parse_beats, snap_to_onsets, tempo_of

SR = ANALYSIS_RATE
HAS_BEAT_THIS = all(importlib.util.find_spec(m) for m in ("beat_this", "einops", "rotary_embedding_torch"))


def rhythm(bpm: float = 120.0, seconds: float = 30.0, kick_phase: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A click on every beat from 0.5 s, plus a 60 Hz kick on every 4th beat from `kick_phase`."""
    beats = np.arange(0.5, seconds - 0.5, 60.0 / bpm)
    x = 1e-4 * np.random.default_rng(0).standard_normal(round(seconds * SR))
    x[np.round(beats * SR).astype(int)] += 1.0
    if kick_phase is not None:
        n = round(0.1 * SR)
        kick = 0.8 * np.sin(2 * np.pi * 60 * np.arange(n) / SR) * np.exp(-np.arange(n) / (0.03 * SR))
        for t in beats[kick_phase::4]:
            x[round(t * SR): round(t * SR) + n] += kick
    return x, beats


def test_a_120_bpm_click_train_gives_its_tempo_and_beats():
    x, reference = rhythm(120.0)
    a = analyze(x, SR, stems="none")
    assert a.tempo == pytest.approx(120.0, rel=0.02)
    assert mir_eval.beat.f_measure(reference, a.beats, f_measure_threshold=0.07) >= 0.9
    assert a.backends["beats"] == "librosa"


@pytest.mark.parametrize("bpm", [90.0, 140.0])
def test_other_tempi(bpm):
    x, reference = rhythm(bpm)
    a = analyze(x, SR, stems="none")
    assert a.tempo == pytest.approx(bpm, rel=0.02)
    assert mir_eval.beat.f_measure(reference, a.beats) >= 0.9


@pytest.mark.parametrize("phase", [0, 1, 3])
def test_downbeats_follow_the_kick(phase):
    x, reference = rhythm(120.0, kick_phase=phase)
    a = analyze(x, SR, stems="none")
    expected = reference[phase::4]
    assert mir_eval.beat.f_measure(expected, a.downbeats) >= 0.9
    assert np.all(np.isin(a.downbeats, a.beats))


def beat_f(reference: np.ndarray, estimate: np.ndarray) -> float:
    """mir_eval's beat F-measure (+-70 ms), the first 5 s left out on both sides."""
    return mir_eval.beat.f_measure(mir_eval.beat.trim_beats(reference), mir_eval.beat.trim_beats(estimate))


@pytest.mark.parametrize("bpm", [90.0, 120.0, 150.0])
def test_drum_loops_give_their_tempo_not_its_double_or_half(bpm):
    """Off-beat hats tempt a tracker to double the tempo and the kick on 1 and 3 to halve it; a
    kick 12 dB under the snare still counts as an accent."""
    loop = drum_loop(bpm, 14.0, kick_db=-12.0)
    a = analyze(loop.audio, loop.sample_rate, stems="none")
    assert a.tempo == pytest.approx(bpm, rel=0.04)
    assert beat_f(loop.beats, a.beats) >= 0.9


def sound_end(audio: np.ndarray, sample_rate: int) -> float:
    """Time (s) of the last sample within 60 dB of the peak."""
    return np.flatnonzero(np.abs(audio) > 1e-3 * np.abs(audio).max())[-1] / sample_rate


@pytest.mark.parametrize("silence", [0.0, 4.0])
def test_beats_run_to_the_end_of_the_music_and_not_into_silence(silence):
    loop = drum_loop(120.0, 12.0, kick_db=-6.0)
    audio = np.concatenate([loop.audio, np.zeros(round(silence * loop.sample_rate), np.float32)])
    a = analyze(audio, loop.sample_rate, stems="none")
    end, period = sound_end(audio, loop.sample_rate), 60.0 / 120.0
    assert end - period <= a.beats[-1] <= end + 0.1
    assert beat_f(loop.beats, a.beats) >= 0.9


def sense_imports(module: types.ModuleType) -> set[str]:
    """Modules of melos.sense that `module` imports by relative import, lazily or not."""
    found = set()
    for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module] if node.module else [a.name for a in node.names])
    return found


def test_beats_imports_beat_this_backend_and_not_the_other_way():
    from melos.sense import beats as beats_module

    assert "beat_this_backend" in sense_imports(beats_module)
    assert not sense_imports(beat_this_backend)
    # Loaded on its own, outside the package (whose __init__ imports everything), it needs no melos module.
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('beat_this_backend', {beat_this_backend.__file__!r}); "
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
            "assert module.BEAT_THIS_NEEDS and not [m for m in sys.modules if m.startswith('melos')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bar_phase_picks_the_loudest_low_band_phase():
    frame_rate = 100.0
    beats = np.arange(1.0, 9.0, 0.5)  # 16 beats
    low, full = np.zeros(1000), np.ones(1000)
    low[np.round(beats[2::4] * frame_rate).astype(int)] = 1.0
    np.testing.assert_array_equal(bar_phase_downbeats(beats, low, full, frame_rate), beats[2::4])
    np.testing.assert_array_equal(bar_phase_downbeats(beats, low, full, frame_rate, beats_per_bar=3),
                                  beats[bar_phase_phase(beats, low, frame_rate, 3)::3])
    assert bar_phase_downbeats(np.zeros(0), low, full, frame_rate).size == 0


def bar_phase_phase(beats: np.ndarray, low: np.ndarray, frame_rate: float, k: int) -> int:
    """Brute force: the phase whose every k-th beat has the largest mean low-band value."""
    values = low[np.round(beats * frame_rate).astype(int)]
    return int(np.argmax([values[p::k].mean() for p in range(k)]))


def test_snapping_moves_beats_to_nearby_onsets_only():
    beats = np.array([1.0, 2.0, 3.0])
    onsets = np.array([0.98, 2.1, 3.03])
    np.testing.assert_allclose(snap_to_onsets(beats, onsets), [0.98, 2.0, 3.03])
    np.testing.assert_allclose(snap_to_onsets(beats, np.array([1.01])), [1.01, 2.0, 3.0])
    np.testing.assert_allclose(snap_to_onsets(beats, np.zeros(0)), beats)


def test_tempo_from_inter_beat_intervals():
    assert tempo_of(np.arange(10) * 0.5) == pytest.approx(120.0)
    assert tempo_of(np.array([1.0])) == 0.0


def test_silence_has_no_beats_and_zero_tempo():
    a = analyze(np.zeros(5 * SR), SR, stems="none")
    assert len(a.beats) == len(a.downbeats) == 0 and a.tempo == 0.0


def test_beats_setting_is_checked(tmp_path):
    assert parse_beats("librosa") == ("librosa", None)
    with pytest.raises(ValueError, match="checkpoint path"):
        parse_beats("beat-this")
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        parse_beats(f"beat-this:{missing}")
    with pytest.raises(FileNotFoundError, match=str(missing)):
        analyze(np.zeros(SR), SR, beats=f"beat-this:{missing}")
    with pytest.raises(ValueError, match="unknown beats backend"):
        parse_beats("madmom")


def test_beat_this_without_the_package_says_what_it_needs(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "beat_this" else real(name, *a))
    checkpoint = tmp_path / "final0.ckpt"
    checkpoint.write_bytes(b"")
    with pytest.raises(ValueError, match="pip install beat-this") as error:
        parse_beats(f"beat-this:{checkpoint}")
    assert str(error.value) == BEAT_THIS_NEEDS and "never downloads" in str(error.value)


def test_beat_this_log_mel_matches_librosa():
    """torchaudio's MelSpectrogram as Beat This! configures it, rebuilt from librosa's parts."""
    import librosa

    audio = np.random.default_rng(0).standard_normal(3 * 22050).astype(np.float32) * 0.1
    ours = beat_this_backend.log_mel(torch.from_numpy(audio)).numpy()
    window_norm = np.sqrt(np.sum(np.hanning(1025)[:-1] ** 2))  # periodic Hann
    mel = librosa.feature.melspectrogram(y=audio, sr=22050, n_fft=1024, hop_length=441, power=1, n_mels=128,
                                         fmin=30, fmax=11000, norm=None, htk=False, pad_mode="reflect")
    np.testing.assert_allclose(ours, np.log1p(1000 * mel / window_norm).T, atol=1e-4)


needs_beat_this = pytest.mark.skipif(not HAS_BEAT_THIS, reason="beat-this (with einops, rotary-embedding-torch) "
                                     "is not installed")


def tiny_checkpoint(path):
    """A randomly initialised small BeatThis saved as the beat-this project's Lightning checkpoints are."""
    from beat_this.model.beat_tracker import BeatThis

    hparams = dict(transformer_dim=64, n_layers=1, head_dim=16, stem_dim=16, ff_mult=2)
    torch.manual_seed(0)
    model = BeatThis(**hparams)
    torch.save({"hyper_parameters": {**hparams, "lr": 1e-3},
                "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    return model.eval()


@needs_beat_this
def test_beat_this_backend_runs_from_a_checkpoint(tmp_path):
    tiny_checkpoint(tmp_path / "tiny.ckpt")
    x, _ = rhythm(120.0, seconds=8.0)
    a = analyze(x, SR, beats=f"beat-this:{tmp_path / 'tiny.ckpt'}", stems="none")
    assert a.backends["beats"] == "beat-this:tiny.ckpt"
    assert np.all(np.diff(a.beats) > 0) and np.all(np.isin(a.downbeats, a.beats))


@needs_beat_this
def test_beat_this_chunking_matches_the_package(tmp_path, monkeypatch):
    # beat_this.inference imports torchaudio at the top (for its front end only): stub it.
    monkeypatch.setitem(sys.modules, "torchaudio", types.ModuleType("torchaudio"))
    monkeypatch.delitem(sys.modules, "beat_this.inference", raising=False)
    monkeypatch.delitem(sys.modules, "beat_this.preprocessing", raising=False)
    from beat_this.inference import split_predict_aggregate

    model = tiny_checkpoint(tmp_path / "tiny.ckpt")
    spect = torch.randn(3100, 128)  # three chunks, the last one moved back
    with torch.inference_mode():
        beat, downbeat = beat_this_backend.predict_logits(model, spect)
        reference = split_predict_aggregate(spect, 1500, 6, "keep_first", model)
    torch.testing.assert_close(beat, reference["beat"])
    torch.testing.assert_close(downbeat, reference["downbeat"])


@needs_beat_this
def test_a_file_that_is_not_a_beat_this_checkpoint_is_named(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a Beat This! checkpoint"):
        beat_this_backend.load_model(path, torch.device("cpu"))
