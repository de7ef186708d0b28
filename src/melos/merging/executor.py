"""The merge executor: stream the tensors of a base model and N adapted models, merge each name
with the chosen method, and write the result in the official checkpoint layout.

Memory stays near one model whatever N is: one tensor of every input is in memory at a time
(float32 accumulators), the output is written tensor by tensor, and only the final smoke test
loads the merged model. The output appears under its name only once it is complete and has run
a forward pass; config, preprocessor settings and custom-code files come from the base, and
`merge.json` records inputs (with SHA-256), method, parameters and seed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import torch
from tqdm import tqdm

from .. import __version__
from ..models.efficient import read_metadata
from ..models.hf_layout import CONFIG, PREPROCESSOR, SAFETENSORS, CheckpointError, custom_code_files, read_json
from ..utils.atomic import atomic_dir
from . import methods
from .keys import group_of, selected
from .tensor_io import LazyCheckpoint, StreamingWriter

METHODS = ("task_arithmetic", "average", "ties", "dare")
POS_CONV_G, POS_CONV_V = "encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.weight_v"


@dataclass
class MergeSpec:
    """How to merge. `weights` is lambda: one for all models or one per model (negative to
    subtract a task vector); `layer_weights` maps a selector (glob over tensor or group names,
    first match wins) to the lambda of the tensors it matches."""

    method: str = "task_arithmetic"  # task_arithmetic | average | ties | dare
    weights: list[float] = field(default_factory=lambda: [1.0])
    layer_weights: dict[str, float] = field(default_factory=dict)
    density: float = 0.2  # TIES: fraction of each task vector kept by magnitude
    trim: str = "tensor"  # TIES trimming scope: per tensor (mergekit, PEFT) or whole model (the TIES paper)
    drop: float = 0.5  # DARE: drop probability p; survivors rescaled by 1 / (1 - p)
    include: list[str] = field(default_factory=list)  # selectors; empty = every tensor
    exclude: list[str] = field(default_factory=list)  # selectors kept at the base's values
    pos_conv: str = "stored"  # merge the positional conv on its stored g and v, or on the combined weight
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown merge method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.trim not in ("tensor", "model"):
            raise ValueError(f"trim must be 'tensor' or 'model', not {self.trim!r}")
        if self.pos_conv not in ("stored", "combined"):
            raise ValueError(f"pos_conv must be 'stored' or 'combined', not {self.pos_conv!r}")
        if not 0 <= self.density <= 1 or not 0 <= self.drop < 1:
            raise ValueError(f"need 0 <= density <= 1 and 0 <= drop < 1 (got {self.density}, {self.drop})")

    def lambdas(self, name: str, n: int) -> list[float]:
        """Per-model lambda for tensor `name`."""
        if self.method == "average":
            return [1.0 / n] * n
        for selector, value in self.layer_weights.items():
            if fnmatchcase(name, selector) or fnmatchcase(group_of(name), selector):
                return [value] * n
        if len(self.weights) not in (1, n):
            raise ValueError(f"{len(self.weights)} weights for {n} models: give one, or one per model")
        return self.weights * n if len(self.weights) == 1 else list(self.weights)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_inputs(base: str | Path, models: list[str | Path]) -> list[LazyCheckpoint]:
    """Open base and models lazily; every model must have the base's tensor names and shapes."""
    if not models:
        raise ValueError("give at least one model to merge with the base")
    inputs = [LazyCheckpoint(base)] + [LazyCheckpoint(m) for m in models]
    ref = inputs[0]
    for other in inputs[1:]:
        missing, extra = sorted(set(ref.shapes) - set(other.shapes)), sorted(set(other.shapes) - set(ref.shapes))
        if missing or extra:
            raise CheckpointError(f"{other.file}: tensor names differ from the base {ref.file} — missing: "
                                  f"{', '.join(missing) or 'none'}; not in the base: {', '.join(extra) or 'none'}")
        for name, shape in ref.shapes.items():
            if other.shapes[name] != shape:
                raise CheckpointError(f"{other.file}: tensor {name!r} has shape {other.shapes[name]}, the base "
                                      f"{ref.file} has {shape}")
            if ref.dtypes[name].is_floating_point != other.dtypes[name].is_floating_point:
                raise CheckpointError(f"{other.file}: tensor {name!r} is {other.dtypes[name]}, the base has "
                                      f"{ref.dtypes[name]}")
    return inputs


def task_vectors(inputs: list[LazyCheckpoint], name: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The base tensor `name` and every model's task vector for it, in float32."""
    base = inputs[0].read(name).float()
    return base, [methods.task_vector(base, m.read(name)) for m in inputs[1:]]


def _combined(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The weight a weight-normalised conv uses: g * v / ||v||, the norm over g's size-1 dims."""
    dims = [d for d in range(v.dim()) if g.shape[d] == 1]
    return g * v / v.norm(dim=dims, keepdim=True)


class _Merger:
    def __init__(self, inputs: list[LazyCheckpoint], spec: MergeSpec, merge_names: list[str]):
        self.inputs, self.spec, self.n = inputs, spec, len(inputs) - 1
        self.thresholds: list[float] | None = None
        if spec.method == "ties" and spec.trim == "model":
            self.thresholds = self._model_thresholds(merge_names)

    def _model_thresholds(self, names: list[str]) -> list[float]:
        """Whole-model TIES trimming: the exact top-density magnitude of each task vector, in two passes."""
        hists = [methods.MagnitudeHistogram() for _ in range(self.n)]
        for stage in ("add", "refine"):
            if stage == "refine":
                for hist in hists:
                    hist.bin_bounds(self.spec.density)
            for name in tqdm(names, desc=f"TIES threshold ({stage})", leave=False, disable=None):
                for hist, tau in zip(hists, task_vectors(self.inputs, name)[1]):
                    getattr(hist, stage)(tau)
        return [h.threshold() for h in hists]

    def merge(self, name: str, base: torch.Tensor, taus: list[torch.Tensor]) -> torch.Tensor:
        spec, lambdas = self.spec, self.spec.lambdas(name, self.n)
        if spec.method == "ties":
            thresholds = self.thresholds or [methods.magnitude_threshold(t, spec.density) for t in taus]
            # trim the raw task vectors, then weight them: the weights must not move the trim line
            trimmed = [w * t * (t.abs() >= th) for w, t, th in zip(lambdas, taus, thresholds)]
            return methods.ties(base, trimmed, [0.0] * self.n)
        if spec.method == "dare":
            taus = [methods.dare(t, spec.drop, torch.Generator().manual_seed(methods.tensor_seed(spec.seed, name, i)))
                    for i, t in enumerate(taus)]
        return methods.task_arithmetic(base, taus, lambdas)


def merge(base: str | Path, models: list[str | Path], spec: MergeSpec, out: str | Path,
          progress: bool = True) -> dict:
    """Merge `models` into `base` as `spec` says and write `out` (official layout). Returns merge.json."""
    base_dir, out = Path(base).expanduser(), Path(out).expanduser()
    config, metadata = base_identity(base_dir)
    inputs = open_inputs(base_dir, models)
    ref = inputs[0]
    floating = [n for n in ref.shapes if ref.dtypes[n].is_floating_point]
    merge_names = [n for n in floating if selected(n, spec.include, spec.exclude)]
    # hash the inputs on another thread while merging (hashlib releases the GIL)
    hashes = ThreadPoolExecutor(1).submit(lambda: [sha256(c.file) for c in inputs])
    merger = _Merger(inputs, spec, merge_names)
    with atomic_dir(out) as tmp:
        changed: dict[str, list[bool]] = {}  # group -> does each model's task vector move it?
        writer = StreamingWriter(tmp / SAFETENSORS, {n: (ref.shapes[n], ref.dtypes[n]) for n in ref.shapes},
                                 metadata)
        pending: dict[str, torch.Tensor] = {}
        for name in tqdm(list(ref.shapes), desc="merging", unit="tensor", disable=not progress or None):
            if name in pending:
                writer.write(name, pending.pop(name))
                continue
            if name not in merge_names:
                writer.write(name, _copied(inputs, name, name in floating))
                continue
            base_t, taus = task_vectors(inputs, name)
            flags = changed.setdefault(group_of(name), [False] * len(taus))
            changed[group_of(name)] = [f or bool(tau.any()) for f, tau in zip(flags, taus)]
            if spec.pos_conv == "combined" and name in (POS_CONV_G, POS_CONV_V):
                merged = _merge_combined(inputs, merger)
                pending.update({k: v.to(ref.dtypes[k]) for k, v in merged.items() if k != name})
                writer.write(name, merged[name].to(ref.dtypes[name]))
                continue
            writer.write(name, merger.merge(name, base_t, taus).to(ref.dtypes[name]))
        writer.close()
        for file in [base_dir / CONFIG, base_dir / PREPROCESSOR, *custom_code_files(base_dir, config)]:
            if file.is_file():
                shutil.copy2(file, tmp / file.name)
        record = {
            "melos_version": __version__, "method": spec.method, "params": asdict(spec), "seed": spec.seed,
            "base": {"path": str(ref.file), "sha256": hashes.result()[0]},
            "models": [{"path": str(m.file), "sha256": h} for m, h in zip(inputs[1:], hashes.result()[1:])],
            "merged_tensors": len(merge_names), "copied_tensors": len(ref.shapes) - len(merge_names),
            "zero_task_vector_groups": {str(m.file): sorted(g for g, f in changed.items() if not f[i])
                                        for i, m in enumerate(inputs[1:])},
        }
        (tmp / "merge.json").write_text(json.dumps(record, indent=2) + "\n")
        smoke_test(tmp)
    return record


def base_identity(base_dir: Path) -> tuple[dict, dict[str, str]]:
    """What the output inherits from the base: its config.json (official layout; copied beside the
    weights) or, for a melos efficient encoder, the config in its weights file's metadata."""
    if (base_dir / CONFIG).is_file():
        return read_json(base_dir / CONFIG), {"format": "pt"}
    metadata = read_metadata(base_dir / SAFETENSORS) if (base_dir / SAFETENSORS).is_file() else None
    if metadata is None:
        raise CheckpointError(f"{base_dir}: the base must be a checkpoint directory with {CONFIG} or a melos "
                              f"{SAFETENSORS} (its config and preprocessor settings are copied to the output)")
    return {}, metadata


def _copied(inputs: list[LazyCheckpoint], name: str, floating: bool) -> torch.Tensor:
    """A tensor not merged: the base's; an integer buffer must be equal in every model."""
    value = inputs[0].read(name)
    if not floating:
        for other in inputs[1:]:
            if not torch.equal(other.read(name), value):
                raise CheckpointError(f"{other.file}: integer tensor {name!r} differs from the base's; "
                                      "it cannot be merged")
    return value


def _merge_combined(inputs: list[LazyCheckpoint], merger: _Merger) -> dict[str, torch.Tensor]:
    """The positional conv merged on its combined weight w = g v / ||v||, stored back as g = ||w||, v = w."""
    gs, vs = ([c.read(k).float() for c in inputs] for k in (POS_CONV_G, POS_CONV_V))
    weights = [_combined(g, v) for g, v in zip(gs, vs)]
    merged = merger.merge(POS_CONV_V, weights[0], [methods.task_vector(weights[0], w) for w in weights[1:]])
    dims = [d for d in range(merged.dim()) if gs[0].shape[d] == 1]
    return {POS_CONV_G: merged.norm(dim=dims, keepdim=True), POS_CONV_V: merged}


def smoke_test(directory: Path, seconds: float = 5.0) -> None:
    """Load the merged model and run it on `seconds` of noise; every hidden state must be finite."""
    from ..models.loading import load_encoder

    model = load_encoder(directory)
    audio = torch.randn(1, int(seconds * model.sample_rate), generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.inference_mode():
        states = model(audio).hidden_states
    bad = [i for i, h in enumerate(states) if not torch.isfinite(h).all()]
    if bad:
        raise CheckpointError(f"{directory}: the merged model gives non-finite hidden states (layers {bad})")
