"""`load_encoder`: one entry point from a preset name, a local checkpoint or a cached hub id."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file

from . import efficient
from .encoder import Encoder
from .hf_layout import CONFIG, SAFETENSORS, CheckpointError, load_state_dict_strict, read_json
from .mert import PRESETS, MERTEncoder, load_mert

# config.json `model_type` -> loader. The official MERT repos say "mert_model"; checkpoints
# written by transformers' HubertModel say "hubert".
_LOADERS = {"mert_model": load_mert, "hubert": load_mert}
PRESET_SEED = 0  # the seed of a preset's random weights unless one is given


def list_presets() -> list[str]:
    return sorted(PRESETS) + sorted(efficient.PRESETS)


def load_encoder(source: str | Path, *, seed: int | None = PRESET_SEED, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None) -> Encoder:
    """Load an encoder, never touching the network.

    Args:
        source: a preset name (random weights, e.g. "mert-v1-95m", "branchformer-sm-12x1024"), a
            local directory in the official Hugging Face layout, a directory or `model.safetensors`
            written by an efficient encoder's `save_pretrained`, or a hub id such as
            "m-a-p/MERT-v1-95M" that is already in the local Hugging Face cache.
        seed: a preset's weights are drawn with this seed (PRESET_SEED by default), so the same
            preset is the same model in every run; the caller's random state is left as it was.
            None draws them from the global torch generator (training seeds it from its recipe).
            Checkpoints ignore it.
        device, dtype: where and in which precision to put the weights.

    Returns the encoder in eval mode.
    """
    name = str(source)
    if name.lower() in PRESETS or name.lower() in efficient.PRESETS:
        return _preset(name.lower(), seed).to(device=device, dtype=dtype)
    if Path(name).suffix == ".safetensors" and Path(name).is_file():
        model = _load_efficient(Path(name))
    else:
        model = _load_directory(_resolve_directory(name))
    return model.to(device=device, dtype=dtype)


def _preset(name: str, seed: int | None) -> Encoder:
    """A preset with random weights, drawn with `seed` (or the global generator when None)."""
    def build() -> Encoder:
        if name in PRESETS:
            return MERTEncoder(copy.deepcopy(PRESETS[name])).eval()
        return efficient.EfficientEncoder(copy.deepcopy(efficient.PRESETS[name])).eval()

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _resolve_directory(source: str) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: is a file; pass a melos {SAFETENSORS} or the checkpoint directory "
                              f"that holds {CONFIG} and the weights")
    looks_like_hub_id = source.count("/") == 1 and not source.startswith((".", "/", "~"))
    if looks_like_hub_id:
        cached = _hub_cache_snapshot(source)
        if cached is not None:
            return cached
        raise FileNotFoundError(
            f"{source!r} is not a local directory and is not in the local Hugging Face cache. melos never "
            f"downloads: fetch it first (e.g. `huggingface-cli download {source} --local-dir DIR`) and pass DIR.")
    raise FileNotFoundError(f"{source!r}: no such directory, and not a preset ({', '.join(list_presets())})")


def _hub_cache_snapshot(repo_id: str) -> Path | None:
    """The snapshot folder of `repo_id` in the local HF cache, or None; offline by construction."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def _load_directory(directory: Path) -> Encoder:
    if not (directory / CONFIG).exists() and (directory / SAFETENSORS).exists():
        return _load_efficient(directory / SAFETENSORS)
    config = read_json(directory / CONFIG)
    model_type = config.get("model_type")
    if model_type not in _LOADERS:
        raise CheckpointError(f"{directory / CONFIG}: model_type {model_type!r} is not supported "
                              f"(supported: {', '.join(sorted(_LOADERS))})")
    return _LOADERS[model_type](directory, config)


def _load_efficient(file: Path) -> Encoder:
    """An efficient encoder from its weights file (the config travels in the metadata)."""
    try:
        config = efficient.read_config(file)
        state = load_file(file)
    except Exception as err:
        raise CheckpointError(f"{file}: cannot read safetensors weights ({err})") from None
    if config is None:
        raise CheckpointError(f"{file}: holds no melos encoder config; official checkpoints need their "
                              f"{CONFIG} beside the weights")
    model = efficient.EfficientEncoder(config)  # not on meta: the mel front end has computed buffers
    load_state_dict_strict(model, state, file)
    return model.eval()
