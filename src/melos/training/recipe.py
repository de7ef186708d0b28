"""Training recipes: small YAML files parsed into typed dataclasses (never executed).

    melos adapt --recipe recipes/culturemert-95m.yaml --set stages.0.steps=100 ...

`--set a.b.c=VALUE` overrides any field; VALUE is read as YAML (numbers, lists, strings).
Reading and checking is `melos.config`'s job, shared by every recipe kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_typed
from ..objectives.mert_loss import LossWeights
from ..objectives.rpq_objective import RPQObjectiveConfig
from .trainer import Stage


@dataclass
class TeacherSpec:
    """The acoustic teacher (the CQT teacher is always on): EnCodec RVQ tokens, as in MERT, or
    random-projection (BEST-RQ) tokens of log-mel frames where no pre-trained codec exists."""

    acoustic: str = "encodec"  # or "random-projection"
    encodec: str = "tiny"  # "tiny" (random, for tests) or a local facebook/encodec_24khz directory
    bandwidth: float = 6.0
    codebooks: int = 8  # random-projection: K quantizers ...
    codebook_size: int = 1024  # ... of this many codewords each
    # Manifest whose clips fit a random-projection teacher's log-mel statistics (default: the
    # training data). A teacher stands for a general-purpose codec: fit it on broad music.
    statistics: str | None = None


@dataclass
class ObjectiveSpec:
    mask_prob: float = 0.8
    mask_span: int = 5
    temperature: float = 0.1
    n_predicted_codebooks: int | None = None
    mixture_prob: float = 0.5
    mixture_samples: tuple[int, int] = (12_000, 24_000)
    weights: LossWeights = field(default_factory=LossWeights)
    final_dim: int = 64


@dataclass
class MonitorSpec:
    """Probe `task` every `every` optimizer steps (features from the current encoder, a small grid)."""

    task: str
    every: int = 100
    epochs: int = 20
    seeds: int = 1


@dataclass
class RecipeStage(Stage):
    replay_fraction: float = 0.0
    hours: float | None = None  # train on a random subset of about this many hours


@dataclass
class Recipe:
    model: str = "mert-tiny"  # preset or checkpoint for `pretrain`; `adapt --from` replaces it
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)  # MERT models
    rpq: RPQObjectiveConfig = field(default_factory=RPQObjectiveConfig)  # efficient encoders
    stages: list[RecipeStage] = field(default_factory=list)
    crop_seconds: float = 5.0
    feature_grad_mult: float = 0.1
    # Official checkpoints ship no pre-training heads: when they are created fresh, the first
    # stage trains all of them (with the CNN) instead of only the codeword embeddings.
    train_fresh_heads: bool = True
    monitor: MonitorSpec | None = None
    precision: str = "float32"  # or "bfloat16" (autocast) / "float16" (autocast + GradScaler)
    seed: int = 0
    checkpoint_every: int = 100


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a recipe YAML file, apply `key.path=value` overrides, and type-check everything."""
    return load_typed(path, Recipe, overrides)
