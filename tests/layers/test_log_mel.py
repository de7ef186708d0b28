"""LogMel against librosa (the reference implementation of the Slaney mel spectrogram)."""

import librosa
import numpy as np
import pytest
import torch

from melos.layers.log_mel import LogMel, mel_filterbank

SR, N_FFT, HOP, N_MELS, EPS = 24000, 2048, 240, 128, 1e-6


def _reference(y: np.ndarray) -> np.ndarray:
    """librosa log-mel [T, n_mels] in float64 with the same conventions as LogMel."""
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, power=2.0, center=True,
        pad_mode="reflect",
    )
    return np.log(mel + EPS).T


def _signals() -> dict[str, np.ndarray]:
    t = np.arange(2 * SR) / SR
    return {
        "noise": 0.1 * np.random.default_rng(0).standard_normal(2 * SR),
        "tone": 0.5 * np.sin(2 * np.pi * 440.0 * t),
    }


@pytest.mark.parametrize("f_max", [None, 8000.0])
def test_filterbank_matches_librosa(f_max):
    ours = mel_filterbank(SR, N_FFT, N_MELS, f_min=30.0, f_max=f_max)
    ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=30.0, fmax=f_max,
                              htk=False, norm="slaney", dtype=np.float64)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    buffer = LogMel(f_min=30.0, f_max=f_max).filters.numpy()
    np.testing.assert_allclose(buffer, ref, rtol=0, atol=1e-8)  # float32 rounding of ~0.04


@pytest.mark.parametrize("name", ["noise", "tone"])
def test_log_mel_matches_librosa(name):
    y = _signals()[name]
    ref = _reference(y)
    ours = LogMel()(torch.from_numpy(y).float()[None])[0].numpy()
    assert ours.shape == ref.shape == (LogMel().n_frames(len(y)), N_MELS)
    # float32 STFT error is ~1e-7 of the peak power; at the tone's leakage floor, a few
    # decades below the peak and near eps, that is up to ~1e-3 in log (measured 7e-4).
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-3 if name == "tone" else 1e-5)
    power_err = np.abs(np.exp(ours) - np.exp(ref)).max() / np.exp(ref).max()
    assert power_err < 1e-6


def test_batch_and_frame_count():
    m = LogMel()
    audio = torch.randn(3, 12345)
    out = m(audio)
    assert out.shape == (3, 1 + 12345 // HOP, N_MELS) and out.dtype == torch.float32
    torch.testing.assert_close(out[1], m(audio[1:2])[0])
    assert m.n_frames(48000) == 201
    assert not any(k in m.state_dict() for k in ("filters", "window"))
