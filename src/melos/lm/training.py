"""`melos lm train`: align the connector on captions, then instruction-tune with LoRA.

    recipe (recipes/lm-*.yaml) -> encoder + local LM -> MusicLM (+ LoRA on the LM if a stage trains it)
    rows (JSONL)  -> pooled encoder features, cached once per clip -> token ids with the loss on answers
    stages        -> melos's Trainer (resume, metrics.jsonl, TensorBoard, torchrun, bf16)
    after each    -> OUT/<stage>/: the model (LoRA merged) and tokenizer, `MusicLM.from_pretrained` reads it

Stage `align` trains `model.connector.*` (encoder and LM frozen) on caption rows; stage
`instruct` trains the connector and the LoRA weights (`*lora_*`) on instruction rows. Which rows a
stage reads is its `data` ("captions", "instructions" or "all"); what trains is its `trainable`
patterns, as in every melos recipe.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio import AudioError
from ..config import load_typed
from ..models import load_encoder
from ..training.trainer import Stage, Trainer, join_torchrun
from .audio_features import AudioFeaturizer, Clip
from .model import MusicLM
from .prompting import AUDIO_MARKER, collate, encode_conversation
from .rows import Row, check_audio, read_rows

log = logging.getLogger(__name__)
DATA = ("captions", "instructions", "all")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


@dataclass
class LMStage(Stage):
    """A training stage that also says which rows it reads."""

    data: str = "captions"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data not in DATA:
            raise ValueError(f"stage {self.name!r}: data must be one of {', '.join(DATA)}, got {self.data!r}")


@dataclass
class LoRA:
    """LoRA on the LM (PEFT), used when a stage's `trainable` has a `*lora_*` pattern."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class LMRecipe:
    """A `melos lm train` recipe (see recipes/lm-*.yaml)."""

    encoder: str  # any source melos.load_encoder reads
    lm: str  # a local Hugging Face causal-LM folder with its tokenizer
    captions: str = ""  # JSONL rows (melos.lm.rows) for stages with data "captions" or "all"
    instructions: str = ""  # JSONL rows for stages with data "instructions" or "all"
    audio_root: str = ""  # relative audio paths are resolved against this (default: the JSONL's folder)
    layers: list[int] = field(default_factory=lambda: [-1])  # hidden states; negative counts from the last
    fusion: str = "weighted"
    stride: int = 15
    max_audio_seconds: float = 120.0
    max_tokens: int = 1024  # longest training sequence; longer rows are an error naming the row
    lora: LoRA = field(default_factory=LoRA)
    stages: list[LMStage] = field(default_factory=list)
    seed: int = 0
    device: str = "cpu"
    precision: str = "float32"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 100
    feature_cache: str = "cache/lm-features"


def load_recipe(path: str | Path, overrides: list[str] = ()) -> LMRecipe:
    recipe = load_typed(path, LMRecipe, list(overrides))
    if not recipe.stages:
        raise ValueError(f"{path}: the recipe has no stages")
    return recipe


@dataclass
class Example:
    """One training row, ready: token ids, labels, its audio's pooled features."""

    ids: list[int]
    labels: list[int]
    features: torch.Tensor  # [L, N, H]
    seconds: float


class LMBatches:
    """Random batches of examples, a pure function of the step (so a resumed run draws the same)."""

    def __init__(self, examples: list[Example], seed: int):
        if not examples:
            raise ValueError("no training examples for this stage")
        self.examples, self.seed = examples, seed

    def batch(self, step: int, batch_size: int) -> tuple[dict[str, list], list[str]]:
        rng = np.random.default_rng([self.seed, step])
        picked = [self.examples[i] for i in rng.integers(0, len(self.examples), batch_size)]
        return ({"examples": [(e.ids, e.labels) for e in picked], "features": [[e.features] for e in picked],
                 "seconds": [e.seconds for e in picked]}, [str(i) for i in range(batch_size)])


class LMObjective(nn.Module):
    """The loss of `MusicLM` on a batch from `LMBatches` (mean over answer tokens)."""

    def __init__(self, model: MusicLM, pad_id: int):
        super().__init__()
        self.model, self.pad_id = model, pad_id

    def forward(self, batch: dict[str, list], generator: torch.Generator | None = None,
                clip_seeds: list[int] | None = None) -> dict[str, torch.Tensor]:
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in collate(batch["examples"], self.pad_id).items()}
        features = [f for row in batch["features"] for f in row]
        return {"loss": self.model(**inputs, audio_features=features).loss}


def resolve_layers(layers: list[int], n_hidden_states: int) -> list[int]:
    """Hidden-state indices with negatives counted from the last (-1: the last layer)."""
    out = [k + n_hidden_states if k < 0 else k for k in layers]
    bad = [k for k in out if not 0 <= k < n_hidden_states]
    if bad:
        raise ValueError(f"layers {layers}: the encoder has hidden states 0..{n_hidden_states - 1}")
    return out


def build_model(recipe: LMRecipe) -> tuple[MusicLM, object]:
    """The untrained MusicLM of `recipe` and its tokenizer (audio tokens added)."""
    from transformers import AutoTokenizer

    lm_dir = Path(recipe.lm).expanduser()
    if not (lm_dir / "config.json").is_file():
        raise FileNotFoundError(f"{lm_dir}: not a Hugging Face model folder (no config.json); melos never downloads")
    if not any((lm_dir / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{lm_dir}: no tokenizer in the LM folder (none of {', '.join(TOKENIZER_FILES)}); "
                                "save the LM's tokenizer beside its weights")
    try:
        tokenizer = AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise FileNotFoundError(f"{lm_dir}: the tokenizer could not be loaded ({error})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoder = load_encoder(recipe.encoder)
    layers = resolve_layers(recipe.layers, encoder.n_hidden_states)
    model = MusicLM.from_parts(encoder, lm_dir, tokenizer, layers=layers, fusion=recipe.fusion, stride=recipe.stride,
                               max_audio_seconds=recipe.max_audio_seconds, encoder_source=recipe.encoder)
    if any("lora" in pattern for stage in recipe.stages for pattern in stage.trainable):
        from peft import LoraConfig, get_peft_model

        model.lm = get_peft_model(model.lm, LoraConfig(r=recipe.lora.r, lora_alpha=recipe.lora.alpha,
                                                       lora_dropout=recipe.lora.dropout,
                                                       target_modules=recipe.lora.target_modules))
    if recipe.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model, tokenizer


def featurizer_of(model: MusicLM, cache_dir: str | Path | None) -> AudioFeaturizer:
    return AudioFeaturizer(model.encoder, model.config.layers, model.config.stride, model.config.max_audio_seconds,
                           cache_dir)


def prepare(rows: list[Row], model: MusicLM, tokenizer, featurizer: AudioFeaturizer, max_tokens: int,
            progress: bool = True) -> list[Example]:
    """Examples of `rows`: features from the cache (computed once), token ids, labels."""
    from tqdm.auto import tqdm

    out = []
    for row in tqdm(rows, desc="features", unit="clip", disable=not progress, dynamic_ncols=True):
        try:
            features = featurizer.clip_features(Clip(row.audio, row.offset, row.duration))
        except (AudioError, ValueError) as error:  # unreadable, or longer than max_audio_seconds
            raise ValueError(f"row {row.id!r}: {error}") from None
        turns = [(t.user, t.assistant) for t in row.turns]
        if AUDIO_MARKER not in turns[0][0]:
            turns[0] = (f"{AUDIO_MARKER}\n{turns[0][0]}", turns[0][1])
        ids, labels = encode_conversation(tokenizer, turns, [features.shape[1]], model.config.audio_token_ids)
        if len(ids) > max_tokens:
            raise ValueError(f"row {row.id!r}: {len(ids)} tokens, more than max_tokens {max_tokens}")
        seconds = features.shape[1] * model.config.stride / model.encoder.frame_rate
        out.append(Example(ids, labels, features, seconds))
    return out


def export(model: MusicLM, tokenizer, folder: Path) -> None:
    """Write `model` (LoRA merged into a copy, so training can go on) and `tokenizer` to `folder`."""
    from ..utils.atomic import atomic_dir

    plain = model
    if hasattr(model.lm, "merge_and_unload"):
        plain = copy.deepcopy(model)
        plain.lm = plain.lm.merge_and_unload()
    plain.config.text_config = plain.lm.config
    with atomic_dir(folder) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def train(recipe: LMRecipe, out: str | Path, progress: bool = True) -> Path:
    """Run every stage of `recipe` into `out` (resuming from `out/checkpoints/last.pt` if there);
    returns the folder of the last stage's model."""
    out = Path(out)
    device = join_torchrun(recipe.device)
    torch.manual_seed(recipe.seed)
    model, tokenizer = build_model(recipe)
    model.to(device)
    model.encoder.to(device)  # for the feature pass; not a submodule, so moved on its own
    featurizer = featurizer_of(model, recipe.feature_cache)
    sources = {"captions": recipe.captions, "instructions": recipe.instructions}
    needed = {kind for s in recipe.stages for kind in (("captions", "instructions") if s.data == "all" else (s.data,))}
    examples: dict[str, list[Example]] = {}
    for kind in sorted(needed):
        if not sources[kind]:
            raise ValueError(f"a stage reads {kind} but the recipe's {kind!r} is empty")
        rows = read_rows(Path(sources[kind]).expanduser(), root=recipe.audio_root or None)
        missing = check_audio(rows)
        if missing:
            raise FileNotFoundError(f"{sources[kind]}: {len(missing)} of {len(rows)} rows have no audio file, e.g. "
                                    + "; ".join(missing[:3]))
        examples[kind] = prepare(rows, model, tokenizer, featurizer, recipe.max_tokens, progress)
    model.encoder.to("cpu")  # features are cached; the encoder is not needed on the device while training

    def batches(stage: LMStage) -> LMBatches:
        chosen = examples["captions"] + examples["instructions"] if stage.data == "all" else examples[stage.data]
        return LMBatches(chosen, recipe.seed)

    objective = LMObjective(model, tokenizer.pad_token_id)
    trainer = Trainer(objective, batches, recipe.stages, out, seed=recipe.seed, device=device,
                      precision=recipe.precision, checkpoint_every=recipe.checkpoint_every, progress=progress,
                      on_stage_end=lambda stage, folder: export(model, tokenizer, folder))
    trainer.run()
    return out / recipe.stages[-1].name
