"""Constant-Q transform magnitude: the "musical teacher" target of MERT pre-training.

Reproduces nnAudio's ``CQT1992v2`` defaults (time-domain kernels, ``norm=1``,
``normalization_type="librosa"``, ``center=True`` with zero padding, ``output_format="Magnitude"``)
without depending on nnAudio. With the MERT settings (24 kHz, hop 320, 336 bins at 48 per octave
from 32.7 Hz) it gives 75 frames/s, the encoder's frame rate.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cqt_kernels(
    sample_rate: int,
    fmin: float,
    n_bins: int,
    bins_per_octave: int,
    filter_scale: float = 1.0,
    norm: float | None = 1,
) -> tuple[list[np.ndarray], list[int], np.ndarray, int]:
    """Complex time-domain CQT kernels, as nnAudio's ``create_cqt_kernels`` builds them.

    Bin k has centre frequency ``f_k = fmin * 2**(k / bins_per_octave)`` and a periodic Hann window
    of ``l_k = ceil(Q * sr / f_k)`` samples, ``Q = filter_scale / (2**(1 / bins_per_octave) - 1)``,
    so every bin spans the same number of cycles. Each windowed complex exponential is normalised by
    its ``norm``-norm, scaled by ``sqrt(l_k)`` (nnAudio's "librosa" output normalisation, folded
    into the kernel) and centred in a row of ``fft_len`` (next power of two >= max ``l_k``) samples.

    Rows are returned one octave block at a time, cropped to the block's support, to avoid a dense
    ``[n_bins, fft_len]`` matrix that is mostly zeros: ``(blocks [n_block, width] complex128,
    block offsets into the fft_len row, freqs [n_bins], fft_len)``. Built in float64 numpy.
    """
    q = filter_scale / (2 ** (1 / bins_per_octave) - 1)
    freqs = fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)
    lengths = np.ceil(q * sample_rate / freqs).astype(np.int64)
    fft_len = 2 ** math.ceil(math.log2(lengths.max()))
    starts = np.ceil(fft_len / 2 - lengths / 2).astype(np.int64) - lengths % 2
    blocks, offsets = [], []
    for lo in range(0, n_bins, bins_per_octave):
        rows = range(lo, min(lo + bins_per_octave, n_bins))
        offset = int(starts[lo : rows.stop].min())
        width = int((starts + lengths)[lo : rows.stop].max()) - offset
        block = np.zeros((len(rows), width), dtype=np.complex128)
        for i, k in enumerate(rows):
            length, at = int(lengths[k]), int(starts[k]) - offset
            n = np.arange(length)
            window = 0.5 - 0.5 * np.cos(2 * np.pi * n / length)
            t = n - (length + 1) // 2
            sig = window * np.exp(2j * np.pi * freqs[k] / sample_rate * t) / length
            if norm:
                sig /= np.linalg.norm(sig, ord=norm)
            block[i, at : at + length] = sig * math.sqrt(length)
        blocks.append(block)
        offsets.append(offset)
    return blocks, offsets, freqs, fft_len


def decimation(hop_length: int, sample_rate: float, top_freq: float, margin: float = 2.0) -> int:
    """Largest power of two D dividing `hop_length` whose Nyquist ``sample_rate / 2D`` stays at
    least `margin` times above `top_freq`: an octave's kernels have (to ~1e-7) no energy there."""
    d = 1
    while hop_length % (2 * d) == 0 and sample_rate / (4 * d) >= margin * top_freq:
        d *= 2
    return d


class CQT(nn.Module):
    """Batched CQT magnitude ``[B, N] -> [B, n_bins, N // hop_length + 1]``.

    Frame t is centred at sample ``t * hop_length`` (input zero-padded by ``fft_len // 2`` each
    side). Kernels are non-persistent buffers: rebuilt from the arguments, never in state dicts.

    Each octave is a strided conv1d with kernels cropped to that octave's support, run on the
    signal decimated by D (see `decimation`): the padded signal is low-passed once in the
    frequency domain (an ideal brick wall) and resampled to 1/D of the rate, and the kernels
    are taken every D-th tap. Both are band-limited below the new Nyquist, so by Parseval the
    inner products are the full-rate ones up to the kernels' out-of-band leakage (~1e-7 of the
    peak); from the lowest octave up, whose kernels are longest, each costs 1/64, 1/32, ... of
    the direct convolution.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        hop_length: int = 320,
        fmin: float = 32.7,
        n_bins: int = 336,
        bins_per_octave: int = 48,
        filter_scale: float = 1.0,
        norm: float | None = 1,
    ) -> None:
        super().__init__()
        top = fmin * 2 ** ((n_bins - 1) / bins_per_octave)
        if top >= sample_rate / 2:
            raise ValueError(
                f"top CQT bin {top:.1f} Hz is not below Nyquist ({sample_rate / 2:.1f} Hz); "
                "reduce n_bins or fmin"
            )
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.n_bins = n_bins
        blocks, starts, freqs, self.fft_len = cqt_kernels(
            sample_rate, fmin, n_bins, bins_per_octave, filter_scale, norm
        )
        self.register_buffer("freqs", torch.from_numpy(freqs).float(), persistent=False)
        self.octaves: list[tuple[int, int]] = []  # (decimation D, first decimated sample) per block
        for g, (block, start) in enumerate(zip(blocks, starts)):
            top_freq = freqs[min((g + 1) * bins_per_octave, n_bins) - 1]
            d = decimation(hop_length, sample_rate, top_freq)
            first = -(-start // d)  # the first tap on the decimated grid is sample d * first
            taps = block[:, d * first - start :: d]
            weight = torch.from_numpy(np.concatenate([taps.real, taps.imag])).float()
            self.register_buffer(f"kernel{g}", weight.unsqueeze(1), persistent=False)
            self.octaves.append((d, first))

    def forward(self, audio: Tensor) -> Tensor:
        """Audio ``[B, N]`` -> CQT magnitude ``[B, n_bins, N // hop_length + 1]``, float32."""
        with torch.autocast(audio.device.type, enabled=False):
            x = F.pad(audio.float(), (self.fft_len // 2, self.fft_len // 2))
            n_frames = (x.shape[-1] - self.fft_len) // self.hop_length + 1
            largest = max(d for d, _ in self.octaves)
            length = -(-x.shape[-1] // largest) * largest
            spectrum = torch.fft.rfft(x, n=length) if largest > 1 else None
            out = []
            for g, (d, first) in enumerate(self.octaves):
                weight = getattr(self, f"kernel{g}")
                # irfft of the spectrum cut at the new Nyquist, on 1/d of the points, is d times the
                # low-passed signal sampled every d-th sample: the factor Parseval asks for.
                low = x if d == 1 else torch.fft.irfft(spectrum[..., : length // (2 * d) + 1], n=length // d)
                hop = self.hop_length // d
                span = (n_frames - 1) * hop + weight.shape[-1]
                y = F.conv1d(low[:, None, first : first + span], weight, stride=hop)
                real, imag = y.chunk(2, dim=1)
                out.append(torch.sqrt(real.square() + imag.square()))
            return torch.cat(out, dim=1)


def align_frames(cqt: Tensor, n_frames: int) -> Tensor:
    """CQT ``[B, n_bins, T_cqt]`` -> frame-major targets ``[B, n_frames, n_bins]`` for the MSE head.

    CQT frame t is centred at sample ``320 t``; encoder frame t covers samples
    ``[320 t, 320 t + 400)`` (centre ``320 t + 200``). Pairing them index by index leaves a constant
    200-sample (8 ms) offset, small against the CQT kernels (394 to 50k samples), so we keep the
    first ``n_frames`` frames.
    For the same clip ``T_cqt = N // 320 + 1 >= (N - 400) // 320 + 1``, so cropping is the normal
    case; a shorter CQT (computed on a shorter or differently padded clip) is right-padded by
    repeating its last frame.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    t_cqt = cqt.shape[-1]
    if t_cqt < n_frames:
        cqt = torch.cat([cqt, cqt[..., -1:].expand(*cqt.shape[:-1], n_frames - t_cqt)], dim=-1)
    return cqt[..., :n_frames].transpose(1, 2)
