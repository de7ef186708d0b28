"""MERT's in-batch noise mixture: paste segments of other clips of the batch into a clip.

Targets must be computed from the clean audio; this returns a new tensor and never touches
its input, so the caller keeps the clean batch for the teachers.
"""

from __future__ import annotations

import torch


def in_batch_mixture(audio: torch.Tensor, prob: float = 0.5, n_segments: tuple[int, int] = (1, 3),
                     segment_samples: tuple[int, int] = (12_000, 24_000),
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Per clip, with probability `prob`, add 1-3 segments cut from other clips of the batch.

    Each segment is 0.5-1 s (12,000-24,000 samples at 24 kHz; up to 36,000 for the 330M
    recipe), taken at a random position of a random other clip and added at full volume at a
    random position.

    Args:
        audio: [B, N] clean clips. Left unchanged.

    Returns the mixed clips [B, N].
    """
    B, N = audio.shape
    mixed = audio.clone()
    if B < 2:
        return mixed
    for b in range(B):
        if torch.rand((), generator=generator).item() >= prob:
            continue
        for _ in range(int(torch.randint(n_segments[0], n_segments[1] + 1, (), generator=generator))):
            length = min(N, int(torch.randint(segment_samples[0], segment_samples[1] + 1, (), generator=generator)))
            other = int(torch.randint(B - 1, (), generator=generator))
            other += other >= b  # any clip but b
            src = int(torch.randint(N - length + 1, (), generator=generator))
            dst = int(torch.randint(N - length + 1, (), generator=generator))
            mixed[b, dst:dst + length] += audio[other, src:src + length]
    return mixed
