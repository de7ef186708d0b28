"""The quickstart's settings, read from `recipes/quickstart.yaml` (typed, overridable with --set)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..training.recipe import Recipe


@dataclass
class CorpusSpec:
    clips: int = 160  # per tradition
    seconds: float = 5.0
    seed: int = 0


@dataclass
class ProbeSpec:
    """The constrained protocol: fewer seeds, epochs and learning rates than the full one."""

    seeds: int = 2
    epochs: int = 30
    learning_rates: list[float] = field(default_factory=lambda: [1e-3, 5e-3])
    dropout: float = 0.2


@dataclass
class QuickstartConfig:
    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    pretrain: Recipe = field(default_factory=Recipe)  # from scratch, western only
    adapt: Recipe = field(default_factory=Recipe)  # two-stage continual pre-training, per tradition and multi
    lambdas: list[float] = field(default_factory=lambda: [0.2, 0.5, 1.0])
    probe: ProbeSpec = field(default_factory=ProbeSpec)
