"""What a `melos lm train` stage writes and how it is read back: only the weights that train.

    OUT/<stage>/
        config.json                   MusicLMConfig (the LM folder it was built on, encoder, layers, ...)
        connector.safetensors         the connector and any other trained non-LoRA weight, MusicLM names
        adapter_config.json           the LoRA adapters in PEFT's layout (`PeftModel.from_pretrained`
        adapter_model.safetensors     reads them onto the base LM), when a stage trains LoRA
        tokenizer files               the LM's tokenizer with the audio tokens

The frozen LM stays where it was (`config.lm`) and is rebuilt from there on load: for an 8B LM a
stage writes megabytes, not tens of gigabytes. `export_merged` merges the adapters into a copy of
the LM and writes one self-contained folder (`MusicLM.from_pretrained` reads it), on request only.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..utils.atomic import atomic_dir
from .model import MusicLM, MusicLMConfig, add_audio_tokens

CONNECTOR_FILE = "connector.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def load_tokenizer(folder: str | Path):
    """The tokenizer saved in `folder`; a one-line FileNotFoundError naming the folder and what is
    missing when there is none or it cannot be read (transformers' own message runs to 5 lines)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{folder}: no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save the LM's "
                                "tokenizer beside its weights")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # transformers raises OSError, ValueError, TypeError, KeyError ... here
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(f"{folder}: the tokenizer could not be loaded: {first}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def lora_names(name: str) -> bool:
    return "lora_" in name


def save_trainable(model: MusicLM, tokenizer, folder: str | Path, trained: set[str] | None = None) -> Path:
    """Write the trainable-only layout (module docstring) to `folder`, atomically.

    Args:
        trained: MusicLM parameter names that train besides the connector and LoRA (e.g. an
            embedding a recipe unfreezes); the connector and LoRA are always written.
    """
    extra = set(trained or ())
    state = {name: p.detach().contiguous().cpu() for name, p in model.named_parameters()
             if not lora_names(name) and (name.startswith("connector.") or name in extra)}
    with atomic_dir(folder) as tmp:
        model.config.text_config = _base(model.lm).config
        model.config.save_pretrained(tmp)
        save_file(state, str(Path(tmp) / CONNECTOR_FILE), metadata={"format": "pt"})
        if hasattr(model.lm, "peft_config"):
            # The audio rows of the embeddings are rebuilt from the LM (add_audio_tokens), so PEFT
            # must not save the resized embeddings beside the adapters.
            model.lm.save_pretrained(tmp, save_embedding_layers=False)
        tokenizer.save_pretrained(tmp)
    return Path(folder)


def load_trained(folder: str | Path, lm_dir: str | Path | None = None, trainable: bool = False):
    """A MusicLM and its tokenizer from a folder `save_trainable` (or `export_merged`) wrote.

    Args:
        lm_dir: the base LM folder, when it moved since training (default: `config.lm`).
        trainable: load the adapters trainable (to go on training), not for inference only.
    """
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json; pass a folder `melos lm train` wrote (OUT/<stage>)")
    tokenizer = load_tokenizer(folder)
    if not (folder / CONNECTOR_FILE).is_file():
        return MusicLM.from_pretrained(folder, dtype="auto"), tokenizer
    config = MusicLMConfig.from_pretrained(folder)
    base = Path(lm_dir or config.lm).expanduser()
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: its base LM folder {base} is missing (the checkpoint holds only the "
                                "trained weights); pass the LM folder")
    lm = AutoModelForCausalLM.from_pretrained(base, local_files_only=True, dtype="auto")
    add_audio_tokens(lm, len(tokenizer), list(config.audio_token_ids.values()))
    config.text_config = lm.config
    model = MusicLM(config, lm=lm)
    model.connector.float()
    state = load_file(str(folder / CONNECTOR_FILE))
    unknown = sorted(set(state) - {name for name, _ in model.named_parameters()})
    if unknown:
        raise ValueError(f"{folder / CONNECTOR_FILE}: weights the model does not have: {', '.join(unknown[:3])}")
    with torch.no_grad():
        parameters = dict(model.named_parameters())
        for name, value in state.items():
            parameters[name].copy_(value)
    if (folder / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        model.lm = PeftModel.from_pretrained(model.lm, folder, is_trainable=trainable)
    return model, tokenizer


def export_merged(folder: str | Path, out: str | Path, lm_dir: str | Path | None = None) -> Path:
    """Merge a stage's adapters into the LM and write one self-contained model folder to `out`."""
    model, tokenizer = load_trained(folder, lm_dir)
    write_merged(model, tokenizer, out)
    return Path(out)


def write_merged(model: MusicLM, tokenizer, out: str | Path) -> None:
    """`model` with LoRA merged into a copy (so training can go on) and `tokenizer`, to `out`."""
    plain = model
    if hasattr(model.lm, "merge_and_unload"):
        plain = copy.deepcopy(model)
        plain.lm = plain.lm.merge_and_unload()
    plain.config.text_config = plain.lm.config
    with atomic_dir(out) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def _base(lm):
    """The transformers model under a PEFT wrapper (or `lm` itself)."""
    return lm.get_base_model() if hasattr(lm, "get_base_model") else lm


__all__ = ["CONNECTOR_FILE", "export_merged", "load_tokenizer", "load_trained", "save_trainable", "write_merged"]
