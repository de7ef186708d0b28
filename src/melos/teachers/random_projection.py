"""BEST-RQ random-projection quantizer: frozen random tokens of standardised log-mel frames.

As in BEST-RQ, MusicFM and SpeechBrain: stacked log-mel frames are standardised with global
statistics, multiplied by a frozen Xavier-normal projection A [input_dim, code_dim],
l2-normalised, and assigned to the nearest codeword of a frozen standard-normal codebook
[codebook_size, code_dim] (also l2-normalised). On unit vectors, max cosine similarity and
min l2 distance pick the same codeword. Nothing here is trained; the only data-dependent
state is the global mean/std, fitted once with :meth:`RandomProjectionQuantizer.fit_stats`
and saved in the state dict together with A and the codebook.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.log_mel import LogMel


def stack_frames(x: torch.Tensor, stack: int) -> torch.Tensor:
    """Concatenate ``stack`` consecutive frames into one, lowering the frame rate.

    The incomplete tail (``T % stack`` frames) is dropped so every output frame sees exactly
    ``stack`` input frames: output frame t is ``concat(x[:, t*stack : (t + 1)*stack])``.

    Args:
        x: frames [B, T, D].
        stack: frames per output frame (4 turns 100 Hz log-mel into 25 Hz).

    Returns:
        stacked frames [B, T // stack, D * stack].
    """
    b, t, d = x.shape
    t_out = t // stack
    return x[:, : t_out * stack].reshape(b, t_out, stack * d)


class RandomProjectionQuantizer(nn.Module):
    """Frozen random projection + random codebook tokenizer (BEST-RQ).

    All buffers are persistent (projection, codebook, mean, std, fitted) so the exact
    tokenizer is restored from a state dict. Buffers are drawn from a local generator seeded
    with ``seed``; the global RNG is untouched.

    Args:
        input_dim: feature size D of the inputs (512 = 4 stacked 128-band mel frames).
        code_dim: projection size.
        codebook_size: number of codewords, i.e. token vocabulary size.
        seed: seed of the local generator drawing the projection and the codebook.
        eps: added to std when standardising, so constant features do not divide by zero.
    """

    def __init__(
        self,
        input_dim: int = 512,
        code_dim: int = 16,
        codebook_size: int = 8192,
        seed: int = 0,
        eps: float = 1e-5,
    ):
        super().__init__()
        self.input_dim = input_dim
        self.code_dim = code_dim
        self.codebook_size = codebook_size
        self.eps = eps
        generator = torch.Generator().manual_seed(seed)
        # MusicFM: nn.init.xavier_normal_ on an empty [input_dim, code_dim] tensor.
        projection = nn.init.xavier_normal_(torch.empty(input_dim, code_dim), generator=generator)
        codebook = torch.randn(codebook_size, code_dim, generator=generator)
        self.register_buffer("projection", projection)
        self.register_buffer("codebook", F.normalize(codebook, dim=-1))
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the global normalisation statistics directly (each [input_dim]) and mark fitted."""
        self.mean.copy_(mean)
        self.std.copy_(std)
        self.fitted.fill_(True)

    @torch.no_grad()
    def fit_stats(self, batches: Iterable[torch.Tensor]) -> None:
        """Fit per-dimension mean and (population) std over every frame of every batch.

        Streams in float64 and merges per-batch moments with Chan et al.'s parallel update,
        which stays accurate when the mean is large relative to the spread.

        Args:
            batches: iterable of features [B, T, input_dim] (any leading shape works).
        """
        count = 0
        mean = torch.zeros(self.input_dim, dtype=torch.float64, device=self.mean.device)
        m2 = torch.zeros_like(mean)
        for batch in batches:
            x = batch.reshape(-1, self.input_dim).to(device=mean.device, dtype=torch.float64)
            n = x.shape[0]
            if n == 0:
                continue
            batch_mean = x.mean(0)
            batch_m2 = (x - batch_mean).square().sum(0)
            delta = batch_mean - mean
            total = count + n
            mean += delta * (n / total)
            m2 += batch_m2 + delta.square() * (count * n / total)
            count = total
        if count == 0:
            raise ValueError("fit_stats got no frames")
        self.set_stats(mean, (m2 / count).sqrt())

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokenize features.

        Raises ``RuntimeError`` if the statistics were never fitted (or set): tokens from
        unnormalised features are silently different, so this is an error rather than a default.
        Memory is B * T * codebook_size floats for the similarity matrix.

        Args:
            x: features [B, T, input_dim].

        Returns:
            tokens [B, T], int64 in [0, codebook_size).
        """
        if not bool(self.fitted):
            raise RuntimeError(
                "RandomProjectionQuantizer stats are not fitted: call fit_stats() or set_stats(), "
                "or load a state dict that has them"
            )
        # float32 regardless of autocast: bf16 would flip near-tie argmaxes and change tokens.
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = (x.float() - self.mean) / (self.std + self.eps)
            z = F.normalize(z @ self.projection, dim=-1)  # [B, T, code_dim]
            return (z @ self.codebook.T).argmax(dim=-1)


class MelTokenizer(nn.Module):
    """Audio -> log-mel -> stacked frames -> BEST-RQ tokens (100 Hz / 4 = 25 Hz at defaults).

    Args:
        sample_rate: audio sample rate in Hz.
        n_fft: STFT size.
        hop_length: STFT hop in samples.
        n_mels: mel bands per frame.
        stack: mel frames stacked per token.
        code_dim: quantizer projection size.
        codebook_size: token vocabulary size.
        seed: quantizer seed.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        n_fft: int = 2048,
        hop_length: int = 240,
        n_mels: int = 128,
        stack: int = 4,
        code_dim: int = 16,
        codebook_size: int = 8192,
        seed: int = 0,
    ):
        super().__init__()
        self.stack, self.sample_rate = stack, sample_rate
        self.log_mel = LogMel(sample_rate, n_fft, hop_length, n_mels)
        self.quantizer = RandomProjectionQuantizer(n_mels * stack, code_dim, codebook_size, seed)

    def n_frames(self, n_samples: int) -> int:
        """Number of tokens (and feature frames) for ``n_samples`` of audio."""
        return self.log_mel.n_frames(n_samples) // self.stack

    @torch.no_grad()
    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """Stacked log-mel, unnormalised: the quantizer input and an MSE reconstruction target.

        Args:
            audio: waveform [B, N].

        Returns:
            features [B, T_tok, n_mels * stack] in float32.
        """
        return stack_frames(self.log_mel(audio), self.stack)

    @torch.no_grad()
    def fit_stats(self, audio_batches: Iterable[torch.Tensor]) -> None:
        """Fit the quantizer's global mean/std on the features of audio batches [B, N]."""
        self.quantizer.fit_stats(self.features(audio) for audio in audio_batches)

    @torch.no_grad()
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Tokenize audio [B, N] into tokens [B, T_tok] (int64)."""
        return self.quantizer(self.features(audio))


class RandomProjectionTokenizer(nn.Module):
    """MERT's acoustic target without a codec: K independent BEST-RQ quantizers over the same
    log-mel frames, at the encoder's frame rate. Audio [B, N] -> tokens [B, K, 1 + N // hop].

    Where no pre-trained EnCodec exists (CPU quickstarts, new domains), this gives targets of the
    shape MERT's heads predict, with every codeword in use (a random EnCodec's are not). Frame t
    is centred at sample ``t * hop_length``; `align_tokens` crops to the encoder's frames. The K
    quantizers share one fitted normalisation, so `fit_stats` runs once; the state dict holds the
    projections, codebooks and statistics, and continual pre-training must reuse it unchanged.

    Args:
        n_codebooks: K, quantizers with seeds ``seed .. seed + K - 1``.
        codebook_size: codewords per quantizer.
        sample_rate, n_fft, hop_length, n_mels: the log-mel (hop 320 at 24 kHz = 75 Hz, MERT's rate).
        code_dim: projection size of each quantizer.
        seed: seed of the first quantizer.
    """

    def __init__(self, n_codebooks: int = 8, codebook_size: int = 1024, sample_rate: int = 24000,
                 n_fft: int = 2048, hop_length: int = 320, n_mels: int = 128, code_dim: int = 16, seed: int = 0):
        super().__init__()
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.n_codebooks, self.codebook_size = n_codebooks, codebook_size
        self.log_mel = LogMel(sample_rate, n_fft, hop_length, n_mels)
        self.quantizers = nn.ModuleList(
            RandomProjectionQuantizer(n_mels, code_dim, codebook_size, seed + k) for k in range(n_codebooks))

    def n_frames(self, n_samples: int) -> int:
        return self.log_mel.n_frames(n_samples)

    @torch.no_grad()
    def fit_stats(self, audio_batches: Iterable[torch.Tensor]) -> None:
        """Fit the shared global mean/std of the log-mel frames of audio batches [B, N]."""
        first, *others = self.quantizers
        first.fit_stats(self.log_mel(audio) for audio in audio_batches)
        for quantizer in others:
            quantizer.set_stats(first.mean, first.std)

    @torch.no_grad()
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.log_mel(audio)
        return torch.stack([quantizer(mel) for quantizer in self.quantizers], dim=1)
