"""Log-mel spectrogram in pure torch, matching librosa's defaults (Slaney mel scale and norm).

A layer shared by the mel front end of efficient encoders and the random-projection teacher
(BEST-RQ / MusicFM): at 24 kHz with hop 240 it gives 100 frames per second of 128 mel bands. Conventions:

- STFT: periodic Hann window, ``center=True`` with reflect padding (as torch/torchaudio and
  MusicFM do), so ``n_frames = 1 + n_samples // hop_length`` and inputs must be longer than
  ``n_fft // 2`` samples.
- Power spectrogram (|X|^2), mel filterbank equal to
  ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")``.
- Natural log: ``log(mel + eps)`` with ``eps = 1e-6``, which floors silence at about -13.8.
  The base is irrelevant downstream because features are standardised with global stats.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    log_part = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log_part, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    log_part = min_log_hz * np.exp(logstep * (np.maximum(mel, min_log_mel) - min_log_mel))
    return np.where(mel >= min_log_mel, log_part, f_sp * mel)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """Triangular Slaney-scale, Slaney-area-normalised mel filters (librosa's default).

    Returns:
        float64 array [n_mels, n_fft // 2 + 1].
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney norm: each triangle has unit area in Hz, so band energy does not grow with width.
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights


class LogMel(nn.Module):
    """Audio [B, N] -> natural-log power mel spectrogram [B, T_mel, n_mels], frame-major.

    Always computed in float32 (autocast disabled): the log of small powers is not bf16-safe.

    Args:
        sample_rate: audio sample rate in Hz.
        n_fft: FFT size and Hann window length.
        hop_length: samples between frames (240 at 24 kHz = 100 frames/s).
        n_mels: number of mel bands.
        f_min: lowest filter edge in Hz.
        f_max: highest filter edge in Hz; ``None`` means ``sample_rate / 2``.
        eps: added to the mel power before the log, to bound silence.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        n_fft: int = 2048,
        hop_length: int = 240,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.eps = eps
        fb = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
        self.register_buffer("filters", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def n_frames(self, n_samples: int) -> int:
        """Number of mel frames for ``n_samples`` of audio (centred STFT)."""
        return 1 + n_samples // self.hop_length

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Compute the log-mel spectrogram.

        Args:
            audio: waveform [B, N], N > n_fft // 2 (reflect padding).

        Returns:
            log-mel [B, T_mel, n_mels] in float32, T_mel = 1 + N // hop_length.
        """
        if audio.dim() != 2:
            raise ValueError(f"expected audio [B, N], got shape {tuple(audio.shape)}")
        with torch.autocast(device_type=audio.device.type, enabled=False):
            spec = torch.stft(
                audio.float(),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                window=self.window,
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )  # [B, F, T]
            power = spec.real.square() + spec.imag.square()
            mel = torch.matmul(self.filters, power)  # [B, n_mels, T]
            return torch.log(mel + self.eps).transpose(1, 2)
