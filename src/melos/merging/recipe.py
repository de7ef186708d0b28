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
from pathlib import Path

from ..training.recipe import read_yaml
from .executor import MergeSpec


def load_merge_recipe(path: str | Path) -> tuple[Path, list[Path], MergeSpec, Path]:
    """(base, models, spec, out) from a recipe file; unknown or missing keys are errors naming the file."""
    path = Path(path).expanduser()
    data = read_yaml(path, "merge recipe")
    fields = {f.name for f in dataclasses.fields(MergeSpec)}
    unknown = sorted(set(data) - fields - {"base", "models", "out", "lambda"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {', '.join(unknown)} (known: base, models, out, lambda, "
                         f"{', '.join(sorted(fields))})")
    missing = [k for k in ("base", "models", "out") if not data.get(k)]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    if "lambda" in data:
        data["weights"] = [data.pop("lambda")]
    if isinstance(data.get("weights"), (int, float)):
        data["weights"] = [data["weights"]]

    def resolve(p: str) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else path.parent / p

    base, models, out = resolve(data.pop("base")), [resolve(m) for m in data.pop("models")], resolve(data.pop("out"))
    try:
        spec = MergeSpec(**data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None
    return base, models, spec, out
