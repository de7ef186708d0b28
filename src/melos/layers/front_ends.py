"""Front ends of the efficient encoders: 24 kHz audio -> frames at 25 Hz (the token rate).

    waveform  the wav2vec 2.0 convolution kernels and strides (stride 320, 75 Hz) plus one stride-3
              layer: total stride 960, a receptive field of 1,040 samples (43 ms). Each conv is
              followed by a per-frame LayerNorm (wav2vec 2.0's "layer" mode), never a norm over
              time, so zero padding after a clip leaves its frames unchanged.
    mel       128-band log-mel at 100 Hz (hop 240), per-frame LayerNorm, then two 3x3 stride-2
              Conv2d layers (time and frequency / 4), flattened and projected, as in the reference
              music models (MusicFM-style Conv2d subsampling).
Both map [B, N] audio to [B, T, D] frames; `n_frames(N)` gives T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .log_mel import LogMel

WAVEFORM_KERNELS = (10, 3, 3, 3, 3, 2, 2, 3)
WAVEFORM_STRIDES = (5, 2, 2, 2, 2, 2, 2, 3)


class WaveformFrontEnd(nn.Module):
    """8 x (Conv1d -> LayerNorm over channels -> GELU), then Linear(C -> D)."""

    def __init__(self, dim: int, channels: int = 512):
        super().__init__()
        ins = (1,) + (channels,) * (len(WAVEFORM_KERNELS) - 1)
        self.convs = nn.ModuleList(nn.Conv1d(i, channels, k, stride=s, bias=False)
                                   for i, k, s in zip(ins, WAVEFORM_KERNELS, WAVEFORM_STRIDES))
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in WAVEFORM_KERNELS)
        self.project = nn.Linear(channels, dim)
        self.receptive_field, jump = 1, 1
        for k, s in zip(WAVEFORM_KERNELS, WAVEFORM_STRIDES):
            self.receptive_field += (k - 1) * jump
            jump *= s

    def n_frames(self, n_samples: int) -> int:
        return max(0, (n_samples - self.receptive_field) // 960 + 1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio[:, None, :]
        for conv, norm in zip(self.convs, self.norms):
            x = F.gelu(norm(conv(x).transpose(1, 2)).transpose(1, 2))
        return self.project(x.transpose(1, 2))


def _halved(n: int) -> int:
    """Length after a kernel-3, stride-2, padding-1 convolution."""
    return (n - 1) // 2 + 1


class MelFrontEnd(nn.Module):
    """Log-mel [B, T100, 128] -> LayerNorm -> 2 x (Conv2d 3x3 stride 2, GELU) -> Linear(C*32 -> D)."""

    def __init__(self, dim: int, channels: int = 128, sample_rate: int = 24000, n_mels: int = 128):
        super().__init__()
        self.log_mel = LogMel(sample_rate, 2048, 240, n_mels)
        self.norm = nn.LayerNorm(n_mels)
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.project = nn.Linear(channels * _halved(_halved(n_mels)), dim)
        self.receptive_field = 2048 + 240 * 6  # the STFT window plus the convolutions' 7 frames

    def n_frames(self, n_samples: int) -> int:
        return _halved(_halved(self.log_mel.n_frames(n_samples)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.log_mel(audio))[:, None]  # [B, 1, T100, n_mels]
        x = F.gelu(self.conv2(F.gelu(self.conv1(x))))  # [B, C, T, n_mels / 4]
        return self.project(x.permute(0, 2, 1, 3).flatten(2))
