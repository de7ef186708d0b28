"""The quickstart's settings, read from `recipes/quickstart.yaml` (typed, overridable with --set)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..training.recipe import Recipe

WESTERN = "western"  # the tradition the base model is pre-trained on; the others adapt from it


@dataclass
class CorpusSpec:
    """The corpus every model pre-trains or adapts on: every clip trains."""

    clips: int = 400  # per tradition
    seconds: float = 5.0
    seed: int = 0


@dataclass
class EvalCorpusSpec:
    """The probing tasks' corpus: generated with another seed, so no adaptation clip is probe data
    (as in the paper), split for the probes. Its clips are as long as the training corpus's."""

    clips: int = 400  # per tradition
    seed: int = 1
    split: dict[str, float] = field(default_factory=lambda: {"train": 0.4, "valid": 0.2, "test": 0.4})

    def __post_init__(self) -> None:
        if set(self.split) != {"train", "valid", "test"} or min(self.split.values()) <= 0:
            raise ValueError(f"eval_corpus.split needs positive train, valid and test fractions, got {self.split}")


@dataclass
class ProbeSpec:
    """The constrained protocol: the full one's 5 seeds, fewer epochs and learning rates."""

    seeds: int = 5
    epochs: int = 30
    learning_rates: list[float] = field(default_factory=lambda: [5e-3, 1e-2])
    dropout: float = 0.2


@dataclass
class QuickstartConfig:
    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    eval_corpus: EvalCorpusSpec = field(default_factory=EvalCorpusSpec)
    pretrain: Recipe = field(default_factory=Recipe)  # from scratch, western only
    adapt: Recipe = field(default_factory=Recipe)  # two-stage continual pre-training, per tradition and multi
    # Steps of each adapt stage for the multi-tradition model, which has three traditions' data (the
    # paper trains it 1.67x / 3.25x as long as a single-tradition one); empty: as `adapt`.
    multi_steps: list[int] = field(default_factory=list)
    lambdas: list[float] = field(default_factory=lambda: [0.2, 0.5, 1.0])
    probe: ProbeSpec = field(default_factory=ProbeSpec)

    def __post_init__(self) -> None:
        if self.eval_corpus.seed == self.corpus.seed:
            raise ValueError(f"eval_corpus.seed must differ from corpus.seed ({self.corpus.seed}): the same seed "
                             "renders the same clips, so the probes would test on adaptation audio")
