"""The wav2vec 2.0 / HuBERT convolutional front end: raw waveform -> 512-d frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvLayer(nn.Module):
    """Conv1d -> (GroupNorm) -> GELU. Attribute names follow the official checkpoints."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, bias: bool, group_norm: bool):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, stride=stride, bias=bias)
        # "group" mode: one group per channel, so it normalises each channel over time.
        self.layer_norm = nn.GroupNorm(out_dim, out_dim, affine=True) if group_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return F.gelu(x)


class ConvFeatureExtractor(nn.Module):
    """Stack of strided convolutions; GroupNorm after the first only ("group" mode).

    With the MERT/HuBERT kernels [10,3,3,3,3,2,2] and strides [5,2,2,2,2,2,2] the total stride
    is 320 and the receptive field 400 samples: T = floor((N - 400) / 320) + 1.
    """

    def __init__(self, dims: tuple[int, ...], kernels: tuple[int, ...], strides: tuple[int, ...], bias: bool):
        super().__init__()
        if not len(dims) == len(kernels) == len(strides):
            raise ValueError("conv_dim, conv_kernel and conv_stride must have the same length")
        in_dims = (1,) + tuple(dims[:-1])
        self.conv_layers = nn.ModuleList(
            ConvLayer(i, o, k, s, bias, group_norm=(n == 0))
            for n, (i, o, k, s) in enumerate(zip(in_dims, dims, kernels, strides))
        )
        self.kernels, self.strides = tuple(kernels), tuple(strides)

    def n_frames(self, n_samples: int) -> int:
        """Number of output frames for an input of `n_samples` (0 if too short)."""
        for k, s in zip(self.kernels, self.strides):
            n_samples = (n_samples - k) // s + 1
            if n_samples <= 0:
                return 0
        return n_samples

    @property
    def receptive_field(self) -> int:
        """Samples seen by one output frame (400 for MERT)."""
        field, jump = 1, 1
        for k, s in zip(self.kernels, self.strides):
            field += (k - 1) * jump
            jump *= s
        return field

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Args: audio [B, N]. Returns features [B, C, T]."""
        x = audio[:, None, :]  # (B, 1, N)
        for layer in self.conv_layers:
            x = layer(x)
        return x
