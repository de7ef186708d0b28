"""Learning-rate schedules: linear warm-up, then cosine (CultureMERT) or linear (MERT) decay."""

from __future__ import annotations

import math


def _phase(step: int, total_steps: int, warmup_steps: int) -> tuple[float | None, float]:
    """(fraction of the warm-up reached, or None once past it; decay progress in [0, 1])."""
    t = step + 1  # so the first update already uses a non-zero rate
    if warmup_steps > 0 and t <= warmup_steps:
        return t / warmup_steps, 0.0
    if total_steps <= warmup_steps:
        return 1.0, 0.0
    return None, min(1.0, (t - warmup_steps) / (total_steps - warmup_steps))


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, lr_max: float, lr_min: float) -> float:
    """Learning rate at optimizer step `step` (0-based) of a stage.

    eta_t = eta_max * t / T_warm                                          for t <= T_warm
    eta_t = eta_min + (eta_max - eta_min) / 2 * (1 + cos(pi * (t - T_warm) / (T_end - T_warm)))

    with t = step + 1. "Re-warming" is just calling this from step 0 again at every stage.
    """
    warm, progress = _phase(step, total_steps, warmup_steps)
    if warm is not None:
        return lr_max * warm
    return lr_min + (lr_max - lr_min) / 2 * (1 + math.cos(math.pi * progress))


def warmup_linear(step: int, total_steps: int, warmup_steps: int, lr_max: float, lr_min: float) -> float:
    """Linear warm-up to lr_max, then linear decay to lr_min at the last step (fairseq's
    polynomial_decay with power 1, as in the public MERT pre-training config)."""
    warm, progress = _phase(step, total_steps, warmup_steps)
    if warm is not None:
        return lr_max * warm
    return lr_max + (lr_min - lr_max) * progress


SCHEDULES = {"cosine": warmup_cosine, "linear": warmup_linear}
