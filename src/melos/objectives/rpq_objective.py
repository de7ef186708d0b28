"""The efficient encoders' pre-training objective (spec section 7): BEST-RQ tokens + mel regression.

    clean audio ──> MelTokenizer (frozen, no grad) ──> stacked log-mel [B, T, 512] ──> tokens [B, T]
         └──> 400 ms segment masking ──> encoder ──> last hidden state [B, T, H]
                                                      ├─ RPQHeads.tokens ─> CE on masked frames
                                                      └─ RPQHeads.mel ────> MSE to standardised mel, masked frames

Both targets come from the clean audio; the encoder sees the zeroed waveform and is scored only
on the frames it could not hear.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.encoder import Encoder
from ..teachers.random_projection import MelTokenizer
from .segment_masking import mask_segments


@dataclass
class RPQObjectiveConfig:
    segment_seconds: float = 0.4
    mask_prob: float = 0.2
    mel_weight: float = 1.0


@dataclass
class RPQPrediction:
    """Outputs of :class:`RPQHeads` for N frames: token logits [N, codebook_size], mel [N, mel_dim]."""

    token_logits: torch.Tensor
    mel: torch.Tensor


class RPQHeads(nn.Module):
    """Trainable pre-training heads: a token classifier and a stacked-mel regressor, one frame each."""

    def __init__(self, hidden_size: int, codebook_size: int = 8192, mel_dim: int = 512):
        super().__init__()
        self.tokens = nn.Linear(hidden_size, codebook_size)
        self.mel = nn.Linear(hidden_size, mel_dim)

    def forward(self, hidden: torch.Tensor) -> RPQPrediction:
        """Args: hidden, encoder outputs [..., H]. Returns predictions with the same leading shape."""
        return RPQPrediction(token_logits=self.tokens(hidden), mel=self.mel(hidden))


class RPQObjective(nn.Module):
    """Encoder + heads (trainable) and a BEST-RQ tokenizer (frozen). `forward` returns named losses.

    loss = CE(token logits, tokens) + mel_weight * MSE(predicted mel, standardised mel), both
    averaged over the masked frames only. The mel target is standardised with the tokenizer's
    fitted per-dimension global mean/std (the statistics its quantizer normalises with), so the
    MSE is in units of the data's spread, O(1) like the CE, whatever the log-mel's offset and
    scale; the paper leaves the scale unstated.

    Keys: `loss`, `loss/tokens`, `loss/mel`, `acc/tokens` (masked-frame accuracy), `mask/fraction`.

    Args:
        encoder: any melos encoder at the tokenizer's sample rate.
        heads: heads sized to the encoder's hidden size and the tokenizer's vocabulary and features.
        tokenizer: a MelTokenizer whose statistics are fitted (or loaded).
        config: masking and loss weight.
    """

    def __init__(self, encoder: Encoder, heads: RPQHeads, tokenizer: MelTokenizer,
                 config: RPQObjectiveConfig | None = None):
        super().__init__()
        quantizer = tokenizer.quantizer
        if tokenizer.log_mel.sample_rate != encoder.sample_rate:
            raise ValueError(f"tokenizer at {tokenizer.log_mel.sample_rate} Hz, encoder at {encoder.sample_rate} Hz")
        if (heads.tokens.out_features, heads.mel.out_features) != (quantizer.codebook_size, quantizer.input_dim):
            raise ValueError(f"heads predict {heads.tokens.out_features} tokens and {heads.mel.out_features} mel "
                             f"dims, the tokenizer has {quantizer.codebook_size} and {quantizer.input_dim}")
        self.encoder, self.heads = encoder, heads
        self.config = config or RPQObjectiveConfig()
        # The tokenizer is kept out of the module tree: it never trains and never enters checkpoints.
        self.teachers = (tokenizer.eval(),)

    @property
    def sample_rate(self) -> int:
        return self.encoder.sample_rate

    @torch.no_grad()
    def targets(self, audio: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets from the clean audio: tokens [B, T] and standardised stacked log-mel [B, T, 512].

        Raises the quantizer's RuntimeError when the tokenizer's statistics were never fitted.
        """
        (tokenizer,) = self.teachers
        quantizer = tokenizer.quantizer
        features = tokenizer.features(audio)[:, :n_frames]  # [B, T, 512]
        tokens = quantizer(features)
        mel = (features - quantizer.mean) / (quantizer.std + quantizer.eps)  # the quantizer's own standardisation
        return tokens, mel

    def mask(self, audio: torch.Tensor, n_frames: int, generator: torch.Generator | None = None,
             clip_seeds: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment-mask the clips, drawing from `generator` or from one generator per clip seed.

        Returns the masked audio [B, N] and the frame mask [B, T] (bool, on the audio's device).
        """
        c = self.config
        hop_length = self.encoder.sample_rate / self.encoder.frame_rate
        segment_length = round(c.segment_seconds * self.encoder.sample_rate)
        if clip_seeds is None:
            masked = mask_segments(audio, n_frames, hop_length, segment_length, c.mask_prob, generator)
            return masked.audio, masked.frame_mask
        parts = [mask_segments(clip[None], n_frames, hop_length, segment_length, c.mask_prob,
                               torch.Generator().manual_seed(seed))
                 for clip, seed in zip(audio, clip_seeds, strict=True)]
        return torch.cat([p.audio for p in parts]), torch.cat([p.frame_mask for p in parts])

    def forward(self, audio: torch.Tensor, generator: torch.Generator | None = None,
                clip_seeds: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Args:
            audio: clean clips [B, N] at `sample_rate`.
            generator: makes the masks reproducible (when no clip_seeds are given).
            clip_seeds: one seed per clip for its mask, so a clip gets the same mask whichever
                process of a distributed run holds it.
        """
        (tokenizer,) = self.teachers
        N = audio.shape[1]
        # Encoder and tokenizer frames both start at sample 0 at the same rate; one may have an
        # extra frame at the end. Masking only the shared frames keeps "at least one masked frame".
        T = min(self.encoder.n_frames(N), tokenizer.n_frames(N))
        tokens, mel = self.targets(audio, T)
        masked_audio, mask = self.mask(audio, T, generator, clip_seeds)
        hidden = self.encoder(masked_audio).last_hidden_state[:, :T]  # [B, T, H]
        prediction = self.heads(hidden[mask])  # only masked frames are scored: [M, ...]
        logits = prediction.token_logits.float()
        l_tokens = F.cross_entropy(logits, tokens[mask])
        l_mel = F.mse_loss(prediction.mel.float(), mel[mask])
        return {"loss": l_tokens + self.config.mel_weight * l_mel,
                "loss/tokens": l_tokens, "loss/mel": l_mel,
                "acc/tokens": (logits.argmax(-1) == tokens[mask]).float().mean(),
                "mask/fraction": mask.float().mean()}
