"""Random fixed-length crops for pre-training, from a mixture of sources plus a replay source.

Every batch is a pure function of (seed, step): resuming a run at step s reproduces the
batches an uninterrupted run would have drawn, with no sampler state to checkpoint.

    sources (weights, e.g. hours 200/200/200/50)    replay source
            \\___ B - R clips ___/                    \\__ R = round(B * replay_fraction) clips
                          batch [B, N]: crops read by seeking, never decoding whole files
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from ..audio import AudioError, load
from .manifest import ManifestRow

log = logging.getLogger(__name__)


@dataclass
class CropSource:
    """A named list of files and its sampling weight (hours or a ratio)."""

    name: str
    rows: list[ManifestRow]
    weight: float = 1.0


def take_hours(rows: list[ManifestRow], hours: float, seed: int = 0) -> list[ManifestRow]:
    """A random subset of whole files adding up to about `hours` (e.g. stage 1's smaller subset)."""
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    out, total = [], 0.0
    for i in order:
        if total >= hours * 3600:
            break
        out.append(rows[i])
        total += rows[i].duration or 0.0
    return out


@dataclass
class _Pool:
    """Files of one source long enough for a crop, sampled in proportion to duration."""

    source: CropSource
    rows: list[ManifestRow] = field(default_factory=list)
    durations: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    def drop(self, path: str) -> None:
        keep = [i for i, r in enumerate(self.rows) if r.path != path]
        self.rows = [self.rows[i] for i in keep]
        self.durations = self.durations[keep]


class CropBatcher:
    """Draws batches of random crops.

    Args:
        sources: the training mixture; a source is picked per clip with probability
            proportional to its weight, a file within it in proportion to its duration.
        crop_seconds, sample_rate: crop size.
        replay, replay_fraction: a replay source filling round(B * fraction) clips per batch.
        seed: the run's data seed.
        allow_truncated: crop from what decodes of a file cut short (logged once) instead of
            dropping it from its pool.
    """

    def __init__(self, sources: list[CropSource], crop_seconds: float = 5.0, sample_rate: int = 24000,
                 replay: CropSource | None = None, replay_fraction: float = 0.0, seed: int = 0,
                 allow_truncated: bool = False):
        if not 0.0 <= replay_fraction < 1.0 or (replay_fraction > 0 and replay is None):
            raise ValueError("replay_fraction must be in [0, 1) and needs a replay source")
        self.crop_seconds, self.sample_rate, self.seed = crop_seconds, sample_rate, seed
        self.replay_fraction, self.allow_truncated = replay_fraction, allow_truncated
        self.n_short = self.n_undated = 0
        self.pools = [self._pool(s) for s in sources]
        self.replay = self._pool(replay) if replay is not None else None
        self.bad: set[str] = set()
        if not any(p.rows for p in self.pools):
            undated = (f"; {self.n_undated} rows have no duration (fill them from the file headers with "
                       "melos.data.manifest.fill_durations, or write the manifest with `melos data scan`)"
                       if self.n_undated else "")
            raise ValueError(f"no file of the training sources is at least {crop_seconds:g} s long "
                             f"({self.n_short - self.n_undated} shorter{undated})")

    def _pool(self, source: CropSource) -> _Pool:
        rows = [r for r in source.rows if r.duration is not None and r.duration >= self.crop_seconds]
        short = len(source.rows) - len(rows)
        undated = sum(r.duration is None for r in source.rows)
        if short:
            log.info("%s: skipping %d files shorter than %g s (%d of them without a duration)", source.name, short,
                     self.crop_seconds, undated)
        self.n_short += short
        self.n_undated += undated
        return _Pool(source, rows, torch.tensor([r.duration for r in rows], dtype=torch.float64))

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, list[str]]:
        """The batch of `step`: audio [B, N] and the source name of every clip."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        n_replay = round(batch_size * self.replay_fraction)
        pools = [self.replay] * n_replay + [self._pick_pool(g) for _ in range(batch_size - n_replay)]
        clips = [self._crop(pool, g) for pool in pools]
        return torch.stack(clips), [p.source.name for p in pools]

    def _pick_pool(self, g: torch.Generator) -> _Pool:
        live = [p for p in self.pools if p.rows]
        weights = torch.tensor([p.source.weight for p in live], dtype=torch.float64)
        return live[int(torch.multinomial(weights, 1, generator=g))]

    def _crop(self, pool: _Pool, g: torch.Generator) -> torch.Tensor:
        n = round(self.crop_seconds * self.sample_rate)
        while pool.rows:
            row = pool.rows[int(torch.multinomial(pool.durations, 1, generator=g))]
            offset = float(torch.rand((), generator=g, dtype=torch.float64)) * (row.duration - self.crop_seconds)
            try:
                audio = load(row.path, self.sample_rate, offset=offset, duration=self.crop_seconds,
                             allow_truncated=self.allow_truncated)
            except AudioError as err:
                log.warning("skipping %s for the rest of the run", err)  # logged once: the file leaves the pool
                self.bad.add(row.path)
                pool.drop(row.path)
                continue
            if audio.shape[0] < n:  # the header promised more than decodes
                audio = torch.nn.functional.pad(audio, (0, n - audio.shape[0]))
            return audio[:n]
        raise RuntimeError(f"source {pool.source.name!r} has no readable file left")
