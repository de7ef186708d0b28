"""`melos lm train`: align the connector on captions, then instruction-tune with LoRA.

    recipe (recipes/lm-*.yaml) -> encoder + local LM -> MusicLM (+ LoRA on the LM if a stage trains it)
    rows (JSONL)  -> pooled encoder features, cached once per clip -> token ids with the loss on answers
    stages        -> melos's Trainer (resume, metrics.jsonl, TensorBoard, torchrun, bf16)
    after each    -> OUT/<stage>/: the trained weights only (connector, LoRA adapters in PEFT's layout)
                     and the tokenizer, see checkpoint.py; `melos lm export` merges them into the LM

Stage `align` trains `model.connector.*` (encoder and LM frozen) on caption rows; stage
`instruct` trains the connector and the LoRA weights (`*lora_*`) on instruction rows. Which rows a
stage reads is its `data` ("captions", "instructions" or "all"); what trains is its `trainable`
patterns, as in every melos recipe. A checkpoint (OUT/checkpoints/last.pt, OUT/<stage>/) holds
only what some stage trains: the frozen LM is rebuilt from its folder, in the dtype it was saved
in (bf16/fp16 LMs stay so; the connector and adapters are float32, cast at the boundary).
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio import AudioError
from ..config import load_typed
from ..models import load_encoder
from .checkpoint import load_tokenizer, save_trainable
from ..training.trainer import Stage, Trainer, join_torchrun
from .audio_features import AudioFeaturizer, Clip
from .model import MusicLM
from .prompting import AUDIO_MARKER, collate, encode_conversation
from .rows import Row, check_audio, read_rows

log = logging.getLogger(__name__)
DATA = ("captions", "instructions", "all")


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
    precision: str = "float32"  # autocast dtype; the frozen LM stays in the dtype it was saved in
    chat_template: bool = True  # prompts through the tokenizer's chat template where it has one
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
    """The loss of `MusicLM` on a batch from `LMBatches` (mean over answer tokens).

    Its state dict (what the trainer checkpoints) holds only the parameters some pattern in
    `trainable` names: the frozen LM is rebuilt from its folder, not written every N steps."""

    def __init__(self, model: MusicLM, pad_id: int, trainable: list[str] = ("*",)):
        super().__init__()
        self.model, self.pad_id = model, pad_id
        self.kept = {name for name, _ in self.named_parameters()
                     if any(fnmatch.fnmatchcase(name, pattern) for pattern in trainable)}

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        return {k: v for k, v in super().state_dict(*args, **kwargs).items() if k in self.kept}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Loads the trained parameters; other entries (a full state from an older run) are ignored."""
        missing = sorted(self.kept - set(state_dict))
        if strict and missing:
            raise ValueError(f"the checkpoint lacks trained weights, e.g. {', '.join(missing[:3])}; it is from "
                             "another recipe")
        return super().load_state_dict({k: v for k, v in state_dict.items() if k in self.kept}, strict=False,
                                       assign=assign)

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
    lm_dir = Path(recipe.lm).expanduser().resolve()
    if not (lm_dir / "config.json").is_file():
        raise FileNotFoundError(f"{lm_dir}: not a Hugging Face model folder (no config.json); melos never downloads")
    tokenizer = load_tokenizer(lm_dir)
    encoder = load_encoder(recipe.encoder)
    layers = resolve_layers(recipe.layers, encoder.n_hidden_states)
    model = MusicLM.from_parts(encoder, lm_dir, tokenizer, layers=layers, fusion=recipe.fusion, stride=recipe.stride,
                               max_audio_seconds=recipe.max_audio_seconds, encoder_source=recipe.encoder,
                               chat_template=recipe.chat_template)
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
        ids, labels = encode_conversation(tokenizer, turns, [features.shape[1]], model.config.audio_token_ids,
                                          chat_template=model.config.chat_template)
        if len(ids) > max_tokens:
            raise ValueError(f"row {row.id!r}: {len(ids)} tokens, more than max_tokens {max_tokens}")
        seconds = features.shape[1] * model.config.stride / model.encoder.frame_rate
        out.append(Example(ids, labels, features, seconds))
    return out


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

    objective = LMObjective(model, tokenizer.pad_token_id, [p for stage in recipe.stages for p in stage.trainable])
    trained = {name.removeprefix("model.") for name in objective.kept}
    trainer = Trainer(objective, batches, recipe.stages, out, seed=recipe.seed, device=device,
                      precision=recipe.precision, checkpoint_every=recipe.checkpoint_every, progress=progress,
                      on_stage_end=lambda stage, folder: save_trainable(model, tokenizer, folder, trained))
    trainer.run()
    return out / recipe.stages[-1].name
