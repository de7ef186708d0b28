"""HuBERT / wav2vec 2.0 span masking over encoder frames (fairseq's `compute_mask_indices`)."""

from __future__ import annotations

import torch


def span_mask(batch_size: int, n_frames: int, mask_prob: float = 0.8, span: int = 5, min_spans: int = 2,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Random span mask, drawn independently per clip.

    Per clip, n = int(mask_prob * T / span + u) span starts (u ~ U[0, 1), at least `min_spans`)
    are drawn without replacement from the T - span + 1 valid positions, and each masks `span`
    frames. Spans may overlap, so with mask_prob 0.8 and span 5 about 58% of frames end up
    masked, not 80%:

        T = 12, span 3, starts {1, 7, 8}:   . x x x . . . x x x x .

    Args:
        batch_size, n_frames: mask shape [B, T].
        generator: for reproducible masks (the global RNG otherwise).

    Returns a bool tensor [B, T], True where the frame is masked.
    """
    if not 0.0 <= mask_prob <= 1.0 or span < 1:
        raise ValueError(f"need 0 <= mask_prob <= 1 and span >= 1, got {mask_prob}, {span}")
    mask = torch.zeros(batch_size, n_frames, dtype=torch.bool)
    n_positions = n_frames - span + 1
    if n_positions <= 0 or mask_prob == 0.0:
        return mask
    offsets = torch.arange(span)
    for b in range(batch_size):
        u = torch.rand((), generator=generator).item()
        n = min(max(min_spans, int(mask_prob * n_frames / span + u)), n_positions)
        starts = torch.randperm(n_positions, generator=generator)[:n]
        mask[b, (starts[:, None] + offsets).flatten()] = True
    return mask

