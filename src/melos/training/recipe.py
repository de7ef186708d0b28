"""Training recipes: small YAML files parsed into typed dataclasses (never executed).

    melos adapt --recipe recipes/culturemert-95m.yaml --set stages.0.steps=100 ...

`--set a.b.c=VALUE` overrides any field; VALUE is read as YAML (numbers, lists, strings).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


def load_typed(path: str | Path, cls: type, overrides: list[str] = ()) -> Any:
    """A YAML file as dataclass `cls`, after `key.path=value` overrides; every field type-checked."""
    path = Path(path)
    data = read_yaml(path, "recipe")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected key.path=value")
        _set(data, key.split("."), yaml.safe_load(value), item)
    return build(cls, data, str(path))


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content ({} when empty); errors name the file and say what it should be."""
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None


def _set(data: Any, keys: list[str], value: Any, item: str) -> None:
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(data, list):
            if not key.isdigit() or int(key) >= len(data):
                raise ValueError(f"override {item!r}: no list item {key}")
            key = int(key)
        elif not isinstance(data, dict):
            raise ValueError(f"override {item!r}: {'.'.join(keys[:i])} is not a mapping")
        if last:
            data[key] = value
        else:
            data = data.setdefault(key, {}) if isinstance(data, dict) else data[key]


def build(cls: type, data: Any, where: str) -> Any:
    """Dataclass `cls` from parsed YAML; unknown keys and wrong types are errors naming `where`."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__} "
                         f"(known: {', '.join(sorted(names))})")
    return cls(**{k: _convert(hints[k], v, f"{where}: {k}") for k, v in data.items()})


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return {_convert(args[0], k, where): _convert(args[1], v, where) for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if origin is tuple:
            return tuple(_convert(a, v, where) for a, v in zip(args, value))
        return [_convert(args[0], v, where) for v in value]
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:  # PyYAML reads "5e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
