"""Read and write the official Hugging Face checkpoint layout (MERT / HuBERT), whatever the model.

A checkpoint directory holds `config.json`, `preprocessor_config.json`, weights in
`model.safetensors` and/or `pytorch_model.bin` (keys without prefix, positional conv as
`weight_g`/`weight_v`) and, for MERT, custom code files named in the config's `auto_map`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG, PREPROCESSOR = "config.json", "preprocessor_config.json"
SAFETENSORS, PYTORCH_BIN = "model.safetensors", "pytorch_model.bin"

# Newer torch spells a weight-normalised conv through parametrisations; checkpoints use g and v.
_KEY_SPELLINGS = {
    ".parametrizations.weight.original0": ".weight_g",
    ".parametrizations.weight.original1": ".weight_v",
}


class CheckpointError(ValueError):
    """A checkpoint that does not match the model: names the file and the offending tensors."""


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (a checkpoint directory needs {CONFIG})") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None


def read_state_dict(directory: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """The weights of a checkpoint directory: safetensors if present, else the .bin (weights only)."""
    if (directory / SAFETENSORS).is_file():
        file = directory / SAFETENSORS
        try:
            return load_file(file), file
        except Exception as err:
            raise CheckpointError(f"{file}: cannot read safetensors weights ({err})") from None
    if (directory / PYTORCH_BIN).is_file():
        file = directory / PYTORCH_BIN
        try:
            # weights_only refuses arbitrary pickled objects: a checkpoint cannot run code on load.
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:
            raise CheckpointError(f"{file}: cannot read PyTorch weights safely ({err})") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{file}: expected a state dict, found {type(state).__name__}")
        return state, file
    raise CheckpointError(f"{directory}: no weights found (expected {SAFETENSORS} or {PYTORCH_BIN})")


def common_prefix(keys: list[str]) -> str:
    """The wrapper prefix every key carries (`module.` from DDP, `model.` from Lightning), or ''."""
    for prefix in ("module.", "model."):
        if keys and all(k.startswith(prefix) for k in keys):
            return prefix
    return ""


def canonical_key(key: str, prefix: str = "") -> str:
    """One tensor name in the checkpoint spelling: prefix dropped, weight norm as weight_g/weight_v."""
    key = key[len(prefix):]
    for old, new in _KEY_SPELLINGS.items():
        if key.endswith(old):
            key = key[: -len(old)] + new
    return key


def normalize_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Canonical key spelling for a whole state dict (see `canonical_key`)."""
    prefix = common_prefix(list(state))
    return {canonical_key(k, prefix): v for k, v in state.items()}


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Copy `state` into `model`; any missing, unexpected or mis-shaped tensor is an error naming it."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected)}")
    if mis_shaped:
        problems.append(f"mis-shaped tensors: {'; '.join(mis_shaped)}")
    if problems:
        raise CheckpointError(f"{source}: does not match the model its config describes — "
                              + " | ".join(problems))
    # assign: a meta-device model takes the checkpoint's tensors (in the model's dtype) without a
    # second copy of the weights
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True, assign=True)


def custom_code_files(directory: Path, config: dict[str, Any]) -> list[Path]:
    """The .py files that the config's auto_map points at (MERT's configuration/modeling code)."""
    modules = {ref.split(".")[0] for ref in config.get("auto_map", {}).values() if isinstance(ref, str)}
    return [directory / f"{m}.py" for m in sorted(modules) if (directory / f"{m}.py").is_file()]


def write_layout(folder: Path, config: dict[str, Any], preprocessor: dict[str, Any], state: dict[str, torch.Tensor],
                 code_files: dict[str, str], *, pytorch_bin: bool = False) -> None:
    """Write the official layout's files into the existing `folder` (not atomically: callers write
    into `melos.utils.atomic.atomic_dir`). `code_files` (name -> source) are the custom-code files
    the config's auto_map names."""
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (folder / PREPROCESSOR).write_text(json.dumps(preprocessor, indent=2) + "\n")
    save_file(state, folder / SAFETENSORS, metadata={"format": "pt"})
    if pytorch_bin:
        torch.save(state, folder / PYTORCH_BIN)
    for name, text in code_files.items():
        (folder / name).write_text(text)
