"""The music-language model: pooled encoder features -> connector -> a causal LM's embeddings.

    audio features [L, N, H] (audio_features.py, per audio)
        -> fusion over the L layers (weighted: softmax weights; concat; mean) [N, H or L*H]
        -> projector: Linear(expand x2), GELU, Linear(-> LM width) [N, D]
        -> written over the N placeholder tokens of the prompt, in order
    input_ids [B, S] with <|audio_start|> <|audio|> x N <|audio_end|> per audio -> the LM

`MusicLM` is a `PreTrainedModel`: `save_pretrained` / `from_pretrained` round-trip the LM and the
connector, PEFT wraps `model.lm`, and `generate` runs the LM on `inputs_embeds`. The encoder is
not part of the saved weights (it is frozen, and large): the config names its source, and
`MusicLM.encoder` loads it from there on first use (or `attach_encoder` sets one).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..models import Encoder, list_presets, load_encoder

log = logging.getLogger(__name__)
FUSIONS = ("weighted", "concat", "mean")
AUDIO_TOKENS = {"start": "<|audio_start|>", "audio": "<|audio|>", "end": "<|audio_end|>"}


class MusicLMConfig(PreTrainedConfig):
    """Settings of a `MusicLM`.

    Args:
        text_config: the LM's config (a dict or a transformers config).
        encoder: where `melos.load_encoder` finds the audio encoder (a folder, file or preset).
        encoder_hidden_size: the encoder's width H.
        layers: hidden-state indices fed to the connector.
        fusion: "weighted" (learned softmax weights over layers), "concat" or "mean".
        stride: encoder frames averaged into one audio token.
        max_audio_seconds: longest audio accepted per item.
        audio_token_ids: ids of the start, placeholder and end tokens in the LM's tokenizer.
        lm: the local LM folder the model was built on (a trainable-only checkpoint reloads it).
        chat_template: prompts go through the tokenizer's chat template (see prompting.py).
    """

    model_type = "melos_music_lm"
    sub_configs = {"text_config": AutoConfig}

    def __init__(self, text_config: dict | PreTrainedConfig | None = None, encoder: str = "",
                 encoder_hidden_size: int = 0, layers: list[int] | None = None, fusion: str = "weighted",
                 stride: int = 15, max_audio_seconds: float = 120.0, audio_token_ids: dict[str, int] | None = None,
                 lm: str = "", chat_template: bool = False, **kwargs):
        if isinstance(text_config, dict):
            text_config = AutoConfig.for_model(**text_config)
        self.text_config = text_config
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        self.encoder, self.encoder_hidden_size = str(encoder), encoder_hidden_size
        self.layers, self.fusion, self.stride = list(layers or []), fusion, stride
        self.max_audio_seconds = max_audio_seconds
        self.audio_token_ids = dict(audio_token_ids or {})
        self.lm, self.chat_template = str(lm), bool(chat_template)
        super().__init__(**kwargs)


class Connector(nn.Module):
    """Layer fusion and the 2-layer MLP projector: [L, N, H] -> [N, D]."""

    def __init__(self, n_layers: int, width: int, lm_width: int, fusion: str):
        super().__init__()
        self.fusion = fusion
        self.layer_logits = nn.Parameter(torch.zeros(n_layers)) if fusion == "weighted" else None
        inputs = width * n_layers if fusion == "concat" else width
        self.projector = nn.Sequential(nn.Linear(inputs, 2 * inputs), nn.GELU(), nn.Linear(2 * inputs, lm_width))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.fusion == "weighted":
            fused = torch.einsum("l,lnh->nh", self.layer_logits.softmax(0).to(features.dtype), features)
        elif self.fusion == "concat":
            fused = features.permute(1, 0, 2).reshape(features.shape[1], -1)
        else:
            fused = features.mean(dim=0)
        return self.projector(fused)


class MusicLM(PreTrainedModel):
    """A causal LM that reads audio through a melos encoder (see the module docstring)."""

    config_class = MusicLMConfig
    base_model_prefix = "music_lm"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: MusicLMConfig, lm: PreTrainedModel | None = None):
        super().__init__(config)
        self.lm = lm if lm is not None else AutoModelForCausalLM.from_config(config.text_config)
        self.connector = Connector(len(config.layers), config.encoder_hidden_size, config.text_config.hidden_size,
                                   config.fusion)
        self.__dict__["_encoder"] = None  # not a submodule: neither saved nor trained
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, Connector):
            for layer in module.projector:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
            if module.layer_logits is not None:
                nn.init.zeros_(module.layer_logits)

    @classmethod
    def from_parts(cls, encoder: str | Encoder, lm_dir: str | Path, tokenizer, *, layers: list[int],
                   fusion: str = "weighted", stride: int = 15, max_audio_seconds: float = 120.0,
                   encoder_source: str | None = None, chat_template: bool = False) -> MusicLM:
        """A new model from a melos encoder and a local causal-LM folder; adds the audio tokens to
        `tokenizer` (in place) and to the LM's embeddings (see `add_audio_tokens`). The LM keeps the
        dtype it was saved in; the connector is float32 and untrained. `chat_template`: prompts use
        the tokenizer's template (only where it has one)."""
        from .prompting import has_chat_template

        enc = load_encoder(encoder) if not isinstance(encoder, Encoder) else encoder
        lm = AutoModelForCausalLM.from_pretrained(lm_dir, local_files_only=True, dtype="auto")
        tokenizer.add_special_tokens({"additional_special_tokens": list(AUDIO_TOKENS.values())})
        ids = {role: tokenizer.convert_tokens_to_ids(token) for role, token in AUDIO_TOKENS.items()}
        add_audio_tokens(lm, len(tokenizer), list(ids.values()))
        config = MusicLMConfig(text_config=lm.config.to_dict(), encoder=encoder_source or str(encoder),
                               encoder_hidden_size=enc.hidden_size, layers=layers, fusion=fusion, stride=stride,
                               max_audio_seconds=max_audio_seconds, audio_token_ids=ids, lm=str(lm_dir),
                               chat_template=chat_template and has_chat_template(tokenizer))
        model = cls(config, lm=lm)
        model.connector.float()
        model.attach_encoder(enc)
        return model

    @property
    def encoder(self) -> Encoder:
        """The frozen audio encoder, loaded from `config.encoder` on first use."""
        if self._encoder is None:
            if self.config.encoder.lower() in list_presets():
                log.warning("encoder %r is a preset: random weights, different at every load; the connector was "
                            "trained on other features. Save the encoder and name its folder instead",
                            self.config.encoder)
            self.__dict__["_encoder"] = load_encoder(self.config.encoder).eval().requires_grad_(False)
        return self._encoder

    def attach_encoder(self, encoder: Encoder) -> None:
        """Use `encoder` (already loaded) instead of loading `config.encoder`; it is not a submodule,
        so it is neither saved nor trained."""
        self.__dict__["_encoder"] = encoder.eval().requires_grad_(False)

    def get_input_embeddings(self) -> nn.Module:
        return self.lm.get_input_embeddings()

    def embed(self, input_ids: torch.Tensor, audio_features: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Token embeddings [B, S, D] with each audio's projected features written over its
        placeholders (audios in row-major order of their placeholders)."""
        embeds = self.get_input_embeddings()(input_ids)
        slots = input_ids == self.config.audio_token_ids["audio"]
        n_slots = int(slots.sum())
        features = audio_features or []
        n_features = sum(f.shape[1] for f in features)
        if n_slots != n_features:
            raise ValueError(f"the prompt has {n_slots} audio placeholder tokens but the audio gives {n_features} "
                             f"features; build prompts with melos.lm.prompting so the counts agree")
        if n_slots:
            # The frozen LM keeps its own dtype (bf16/fp16 on disk) and the trained connector its
            # own (float32): features enter in the connector's dtype, leave in the LM's.
            dtype = self.connector.projector[0].weight.dtype
            projected = self.connector(torch.cat([f.to(embeds.device, dtype) for f in features], dim=1))
            embeds = embeds.masked_scatter(slots[..., None], projected.to(embeds.dtype))
        return embeds

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, audio_features: list[torch.Tensor] | None = None,
                **kwargs) -> CausalLMOutputWithPast:
        return self.lm(inputs_embeds=self.embed(input_ids, audio_features), attention_mask=attention_mask,
                       labels=labels, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 audio_features: list[torch.Tensor] | None = None, **kwargs) -> torch.Tensor:
        """New tokens only [B, S'] (the LM's `generate` on `inputs_embeds`); pad prompts on the left."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.lm.generate(inputs_embeds=self.embed(input_ids, audio_features), attention_mask=attention_mask,
                                **kwargs)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs)


@torch.no_grad()
def add_audio_tokens(lm: PreTrainedModel, vocab_size: int, token_ids: list[int]) -> None:
    """Make room for the audio tokens and give their rows (input and output embeddings) the mean of
    the other rows: deterministic, so a trainable-only checkpoint rebuilds them from the LM alone.

    The embeddings only grow: LMs whose matrix is padded beyond the tokenizer (Qwen2) already have
    rows for the new ids, and shrinking would drop rows the LM was saved with."""
    if vocab_size > lm.get_input_embeddings().weight.shape[0]:
        lm.resize_token_embeddings(vocab_size, mean_resizing=False)
    for layer in (lm.get_input_embeddings(), lm.get_output_embeddings()):
        if layer is None:
            continue
        weight = layer.weight
        keep = torch.ones(weight.shape[0], dtype=torch.bool)
        keep[token_ids] = False
        weight[token_ids] = weight[keep].float().mean(dim=0).to(weight.dtype)


AutoConfig.register(MusicLMConfig.model_type, MusicLMConfig, exist_ok=True)
