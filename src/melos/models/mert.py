"""MERT-v1 / HuBERT encoder in native PyTorch, key-for-key compatible with the official checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..layers.conv_features import ConvFeatureExtractor
from ..layers.positional_conv import PositionalConvEmbedding, WeightNormConv1d
from ..layers.transformer import TransformerLayer
from .encoder import Encoder, EncoderOutput
from .hf_layout import (CONFIG, PREPROCESSOR, CheckpointError, custom_code_files, load_state_dict_strict, normalize_keys,
                        read_json, read_state_dict, write_layout)

# Field names are those of the official config.json (transformers' HubertConfig / MERTConfig),
# so a config round-trips through the official files without a renaming table.


@dataclass
class MERTConfig:
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    feat_extract_norm: str = "group"
    feat_proj_layer_norm: bool = True
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False
    layer_norm_eps: float = 1e-5
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    feat_proj_dropout: float = 0.1
    layerdrop: float = 0.05
    mask_time_prob: float = 0.05
    mask_feature_prob: float = 0.0
    sample_rate: int = 24000
    # From preprocessor_config.json, not config.json: per-clip zero-mean unit-variance input.
    do_normalize: bool = True
    # Every other key of the source config.json (auto_map, model_type, ...), written back on save.
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_hf(cls, config: dict[str, Any], do_normalize: bool = True) -> "MERTConfig":
        """Build from an official config.json dict.

        A field is refused only when its value would change the outputs and melos does not
        compute that variant. MERT's `attention_relax` (32.0 in MERT-v1-330M) is accepted: the
        official code divides the attention scores by it, subtracts the row maximum and
        multiplies back, which leaves the softmax unchanged in exact arithmetic. Unknown keys
        are kept in `extra` and written back on save.
        """
        for key, allowed in _OUTPUT_CHANGING.items():
            if key in config and config[key] not in allowed:
                raise ValueError(f"config.json: {key}={config[key]!r} changes the model's outputs in a way melos "
                                 f"does not implement (melos supports {key} in {allowed})")
        names = {f.name for f in fields(cls)} - {"extra", "do_normalize"}
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in names}
        extra = {k: v for k, v in config.items() if k not in names}
        return cls(**known, do_normalize=do_normalize, extra=extra)

    def to_hf(self) -> dict[str, Any]:
        """The config.json dict: the source's extra keys, then every architecture field."""
        out = dict(DEFAULT_HF_EXTRA) if not self.extra else dict(self.extra)
        for key, value in asdict(self).items():
            if key not in ("extra", "do_normalize"):
                out[key] = list(value) if isinstance(value, tuple) else value
        out["num_feat_extract_layers"] = len(self.conv_dim)
        return out


# config.json fields whose other values change the computation (a different front-end norm or
# activation, MERT's CQT input branch or DeepNorm residual scaling, a batch norm in the positional
# conv): the values melos computes exactly.
_OUTPUT_CHANGING: dict[str, tuple[Any, ...]] = {
    "feat_extract_norm": ("group",),
    "feat_extract_activation": ("gelu",),
    "hidden_act": ("gelu",),
    "feature_extractor_cqt": (False,),
    "conv_pos_batch_norm": (False,),
    "deepnorm": (False,),
}

# What a model built from a preset writes as identity: transformers' HubertModel reads it
# natively (no custom code needed), while keeping MERT's own fields.
DEFAULT_HF_EXTRA: dict[str, Any] = {"model_type": "hubert", "architectures": ["HubertModel"]}

_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
              do_stable_layer_norm=True, hidden_dropout=0.0, attention_dropout=0.0, feat_proj_dropout=0.0,
              layerdrop=0.0)
PRESETS: dict[str, MERTConfig] = {
    "mert-v1-95m": MERTConfig(),
    "mert-v1-330m": MERTConfig(**_LARGE),
    # For tests, the CPU quickstart and smoke runs: the real conv kernels and strides, tiny widths.
    "mert-tiny": MERTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                            conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
}


class MERTEncoder(Encoder):
    """HuBERT-architecture encoder (MERT-v1): conv front end, projection, positional conv, Transformer.

    Raw audio goes in; when `config.do_normalize` (as in the official preprocessor config) each
    clip is normalised to zero mean and unit variance first, so outputs are the official features.
    """

    def __init__(self, config: MERTConfig):
        super().__init__()
        self.config = c = config
        if c.feat_extract_norm != "group":
            raise ValueError(f"feat_extract_norm={c.feat_extract_norm!r} is not supported")
        self.feature_extractor = ConvFeatureExtractor(c.conv_dim, c.conv_kernel, c.conv_stride, c.conv_bias)
        self.feature_projection = FeatureProjection(c.conv_dim[-1], c.hidden_size, c.feat_proj_layer_norm,
                                                    c.layer_norm_eps, c.feat_proj_dropout)
        if c.mask_time_prob > 0 or c.mask_feature_prob > 0:
            self.masked_spec_embed = nn.Parameter(torch.empty(c.hidden_size))
        self.encoder = TransformerEncoder(c)
        self.sample_rate = c.sample_rate
        self.frame_rate = c.sample_rate / math.prod(c.conv_stride)
        self.hidden_size = c.hidden_size
        self.n_hidden_states = c.num_hidden_layers + 1
        self.receptive_field = self.feature_extractor.receptive_field
        # Training-time scale of the gradient reaching the conv front end (fairseq's
        # feature_grad_mult, 0.1 for MERT-95M); 1.0 leaves it untouched.
        self.feature_grad_mult = 1.0
        # Custom-code files (MERT's modeling_MERT.py, ...) of the source checkpoint, saved alongside.
        self.code_files: dict[str, str] = {}
        if next(self.parameters()).is_meta:  # built to receive checkpoint weights: no init
            return
        self.apply(_init_weights)
        if hasattr(self, "masked_spec_embed"):
            nn.init.uniform_(self.masked_spec_embed)

    def n_frames(self, n_samples: int) -> int:
        return self.feature_extractor.n_frames(n_samples)

    def forward(self, audio: torch.Tensor, frame_mask: torch.Tensor | None = None) -> EncoderOutput:
        """Args:
            audio: float tensor of shape [B, N] (or [N]) at 24 kHz, equal-length clips.
            frame_mask: optional bool [B, T]; masked frames' projected features are replaced by
                the learned `masked_spec_embed` (HuBERT masked prediction).
        """
        if audio.dim() == 1:
            audio = audio[None]
        if audio.shape[-1] < self.receptive_field:
            raise ValueError(f"audio of {audio.shape[-1]} samples is shorter than the encoder's receptive "
                             f"field ({self.receptive_field} samples)")
        if self.config.do_normalize:
            audio = normalize_clips(audio)
        features = self.feature_extractor(audio).transpose(1, 2)  # (B, T, C)
        if self.feature_grad_mult != 1.0:
            features = GradMultiply.apply(features, self.feature_grad_mult)
        x = self.feature_projection(features)
        if frame_mask is not None:
            x = torch.where(frame_mask[..., None], self.masked_spec_embed.to(x.dtype), x)
        return EncoderOutput(self.encoder(x), features)

    def preprocessor_config(self) -> dict[str, Any]:
        """The official processor settings (Wav2Vec2FeatureExtractor) for this model."""
        return {
            "do_normalize": self.config.do_normalize,
            "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": True,
            "sampling_rate": self.sample_rate,
        }

    def write_files(self, folder: Path, *, pytorch_bin: bool = False) -> None:
        """The official layout (safetensors, optionally also pytorch_model.bin)."""
        write_layout(folder, self.config.to_hf(), self.preprocessor_config(), self.state_dict(), self.code_files,
                     pytorch_bin=pytorch_bin)


def load_mert(directory: Path, config: dict[str, Any]) -> MERTEncoder:
    """Build a MERTEncoder from an official checkpoint directory whose config.json is `config`."""
    preprocessor = read_json(directory / PREPROCESSOR) if (directory / PREPROCESSOR).is_file() else {}
    rate = preprocessor.get("sampling_rate", config.get("sample_rate", 16000))
    if "sample_rate" in config and rate != config["sample_rate"]:
        raise CheckpointError(f"{directory}: {PREPROCESSOR} says {rate} Hz but {CONFIG} says "
                              f"{config['sample_rate']} Hz")
    try:
        mert_config = MERTConfig.from_hf({**config, "sample_rate": rate},
                                         do_normalize=preprocessor.get("do_normalize", True))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{directory / CONFIG}: {err}") from None
    with torch.device("meta"):
        model = MERTEncoder(mert_config)
    state, file = read_state_dict(directory)
    load_state_dict_strict(model, normalize_keys(state), file)  # the meta model takes the loaded tensors
    model.code_files = {p.name: p.read_text() for p in custom_code_files(directory, config)}
    return model.eval()


class GradMultiply(torch.autograd.Function):
    """Identity forward; gradient scaled by `scale` on the way back."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def normalize_clips(audio: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Wav2Vec2FeatureExtractor's do_normalize: (x - mean) / sqrt(var + eps) per clip, var with ddof 0."""
    var, mean = torch.var_mean(audio, dim=-1, keepdim=True, correction=0)
    return (audio - mean) * torch.rsqrt(var + eps)


class FeatureProjection(nn.Module):
    """LayerNorm(C) -> Linear(C -> H) -> dropout."""

    def __init__(self, in_dim: int, dim: int, layer_norm: bool, eps: float, dropout: float):
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_dim, eps=eps) if layer_norm else nn.Identity()
        self.projection = nn.Linear(in_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.projection(self.layer_norm(x)))


class TransformerEncoder(nn.Module):
    """Positional conv + Transformer layers, returning the hidden states in official order.

    post-LN: states = (LN(x + pos(x)), out_1, ..., out_L)            -> L + 1 states
    pre-LN:  states = (x + pos(x), out_1, ..., out_{L-1}, LN(out_L)) -> L + 1 states
    """

    def __init__(self, c: MERTConfig):
        super().__init__()
        self.pre_norm = c.do_stable_layer_norm
        self.layerdrop = c.layerdrop
        self.pos_conv_embed = PositionalConvEmbedding(c.hidden_size, c.num_conv_pos_embeddings,
                                                      c.num_conv_pos_embedding_groups)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(c.hidden_size, c.num_attention_heads, c.intermediate_size, c.do_stable_layer_norm,
                             c.layer_norm_eps, c.hidden_dropout, c.attention_dropout, c.activation_dropout)
            for _ in range(c.num_hidden_layers)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x + self.pos_conv_embed(x)
        if not self.pre_norm:
            x = self.layer_norm(x)
        x = self.dropout(x)
        states = [x]
        for layer in self.layers:
            # LayerDrop (training only): a skipped layer passes its input through.
            if not (self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop):
                x = layer(x)
            states.append(x)
        if self.pre_norm:
            states[-1] = self.layer_norm(x)
        return tuple(states)


def _init_weights(module: nn.Module) -> None:
    """HuBERT's initialisation, applied once at construction."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv1d):
        nn.init.kaiming_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, WeightNormConv1d):
        module.reset_parameters()
