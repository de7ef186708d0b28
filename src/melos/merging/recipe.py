"""A merge described in YAML (`melos merge --recipe merge.yaml`):

    base: runs/western/final          # checkpoint directory (paths relative to this file)
    models: [runs/makam/final, runs/raga/final]
    method: task_arithmetic           # task_arithmetic | average | ties | dare
    weights: [0.2, 0.2]               # lambda per model (or `lambda: 0.2` for all)
    layer_weights: {"block.1*": 0.3}  # optional: lambda per tensor/group selector
    exclude: [cnn]                    # optional; also include, density, trim, drop, pos_conv, seed
    out: merged/ta-0.2
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..config import build, check_keys, read_yaml
from .executor import MergeSpec


@dataclass
class MergeRecipe(MergeSpec):
    """A merge spec plus its inputs and output, as the file spells them."""

    base: str = ""
    models: list[str] = field(default_factory=list)
    out: str = ""


def load_merge_recipe(path: str | Path) -> tuple[Path, list[Path], MergeSpec, Path]:
    """(base, models, spec, out) from a recipe file; unknown or missing keys and wrong types are
    errors naming the file."""
    path = Path(path).expanduser()
    data = read_yaml(path, "merge recipe")
    check_keys(data, MergeRecipe, str(path), also={"lambda"})
    missing = [k for k in ("base", "models", "out") if not data.get(k)]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    if "lambda" in data:  # shorthand: one lambda for every model
        data["weights"] = data.pop("lambda")
    if isinstance(data.get("weights"), (int, float)):
        data["weights"] = [data["weights"]]
    recipe = build(MergeRecipe, data, str(path))

    def resolve(p: str) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else path.parent / p

    spec = MergeSpec(**{f.name: getattr(recipe, f.name) for f in dataclasses.fields(MergeSpec)})
    return resolve(recipe.base), [resolve(m) for m in recipe.models], spec, resolve(recipe.out)
