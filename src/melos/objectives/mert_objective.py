"""The MERT pre-training objective as one module: batch of clean clips in, dict of losses out.

    clean audio ──> teachers (frozen, no grad) ──> acoustic tokens [B, K, T], CQT [B, T, 336]
         └──> in-batch noise mixture ──> encoder(frame_mask = span mask) ──> last hidden state
                                                      ├─ MERTHeads ─> CE on masked frames (per codebook)
                                                      ├─ MERTHeads ─> CQT MSE on masked frames
                                                      └─ CNN features ─> feature penalty

The acoustic tokens come from EnCodec's RVQ (MERT) or from K random-projection quantizers of
log-mel frames (`teachers.random_projection.RandomProjectionTokenizer`), the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.mert import MERTEncoder
from ..teachers.cqt import CQT, align_frames
from ..teachers.encodec_tokens import align_tokens
from .masking import span_mask
from .mert_loss import LossWeights, MERTHeads, acoustic_loss, cqt_loss, feature_penalty
from .noise_mixture import in_batch_mixture


@dataclass
class MERTObjectiveConfig:
    mask_prob: float = 0.8
    mask_span: int = 5
    temperature: float = 0.1
    weights: LossWeights = field(default_factory=LossWeights)
    n_predicted_codebooks: int | None = None  # e.g. 4: predict a random 4 of the 8 per batch
    mixture_prob: float = 0.5
    mixture_samples: tuple[int, int] = (12_000, 24_000)


class MERTObjective(nn.Module):
    """Encoder + heads (trainable) and teachers (frozen). `forward` returns named losses.

    Keys: `loss` (weighted total), `loss/acoustic`, `loss/cqt`, `loss/features`,
    `acc/codebook_<k>` (masked-frame accuracy of each predicted codebook), `mask/fraction`.
    """

    def __init__(self, encoder: MERTEncoder, heads: MERTHeads, acoustic_teacher: nn.Module, cqt_teacher: CQT,
                 config: MERTObjectiveConfig | None = None):
        super().__init__()
        self.encoder, self.heads = encoder, heads
        self.config = config or MERTObjectiveConfig()
        # Teachers are kept out of the module tree: they never train and never enter checkpoints.
        self.teachers = (acoustic_teacher.eval(), cqt_teacher.eval())

    @property
    def sample_rate(self) -> int:
        return self.encoder.sample_rate

    @torch.no_grad()
    def targets(self, audio: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher targets from the clean audio: tokens [B, K, T] and CQT [B, T, bins]."""
        acoustic, cqt = self.teachers
        return align_tokens(acoustic(audio), n_frames), align_frames(cqt(audio), n_frames)

    def forward(self, audio: torch.Tensor, generator: torch.Generator | None = None,
                clip_seeds: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Args:
            audio: clean clips [B, N] at 24 kHz.
            generator: makes mixtures, codebook subsets and (without clip_seeds) masks reproducible.
            clip_seeds: one seed per clip for its mask, so a clip gets the same mask whichever
                process of a distributed run holds it.
        """
        c = self.config
        B, N = audio.shape
        T = self.encoder.n_frames(N)
        tokens, cqt = self.targets(audio, T)
        noisy = in_batch_mixture(audio, c.mixture_prob, segment_samples=c.mixture_samples, generator=generator)
        if clip_seeds is None:
            mask = span_mask(B, T, c.mask_prob, c.mask_span, generator=generator)
        else:
            mask = torch.cat([span_mask(1, T, c.mask_prob, c.mask_span, generator=torch.Generator().manual_seed(s))
                              for s in clip_seeds])
        mask = mask.to(audio.device)
        out = self.encoder(noisy, frame_mask=mask)
        hidden = out.last_hidden_state
        codebooks = None
        if c.n_predicted_codebooks is not None:
            codebooks = torch.randperm(tokens.shape[1], generator=generator)[: c.n_predicted_codebooks].sort().values
            codebooks = codebooks.to(audio.device)
        l_acoustic, accuracy = acoustic_loss(self.heads, hidden, tokens, mask, codebooks, c.temperature)
        l_cqt = cqt_loss(self.heads, hidden, cqt, mask)
        l_features = feature_penalty(out.features)
        w = c.weights
        metrics = {"loss": w.acoustic * l_acoustic + w.cqt * l_cqt + w.features * l_features,
                   "loss/acoustic": l_acoustic, "loss/cqt": l_cqt, "loss/features": l_features,
                   "mask/fraction": mask.float().mean()}
        ids = codebooks.tolist() if codebooks is not None else range(tokens.shape[1])
        metrics.update({f"acc/codebook_{k}": a for k, a in zip(ids, accuracy)})
        return metrics
