"""Efficient music encoders: Branchformer or Conformer blocks, with rotary self-attention or
SummaryMixing, over a 25 Hz front end (spec section 7). With SummaryMixing, time and memory grow
linearly with clip length, so whole songs fit where quadratic attention does not.

Saved in melos's own layout: a directory holding `model.safetensors`, whose metadata carries the
config, so the weights file alone is enough to rebuild the model (`load_encoder(dir_or_file)`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..layers.efficient_blocks import BranchformerBlock, ConformerBlock
from ..layers.front_ends import MelFrontEnd, WaveformFrontEnd
from .encoder import Encoder, EncoderOutput

FORMAT = "melos-efficient-encoder"
WEIGHTS = "model.safetensors"


@dataclass
class EfficientConfig:
    family: str = "branchformer"  # or "conformer"
    mixer: str = "summary-mixing"  # "attention" (rotary MHSA) or "summary-mixing[-lite]"
    num_layers: int = 12
    dim: int = 1024
    n_heads: int = 16
    ffn_hidden: int = 4096  # Conformer feed-forward width
    cgmlp_units: int = 4096  # Branchformer cgMLP width (split in halves)
    summary_hidden: int = 512  # SummaryMixing f and s width
    kernel_size: int = 31
    front_end: str = "waveform"  # or "mel"
    front_channels: int = 512
    dropout: float = 0.1
    sample_rate: int = 24000

    def __post_init__(self) -> None:
        if self.family not in ("branchformer", "conformer"):
            raise ValueError(f"family must be 'branchformer' or 'conformer', got {self.family!r}")
        if self.front_end not in ("waveform", "mel"):
            raise ValueError(f"front_end must be 'waveform' or 'mel', got {self.front_end!r}")


def _sizes(family: str, mixer: str, layers: int, dim: int) -> EfficientConfig:
    return EfficientConfig(family, mixer, layers, dim, n_heads=dim // 64, ffn_hidden=4 * dim, cgmlp_units=4 * dim,
                           summary_hidden=dim // 2)


# The paper's table (spec section 7); widths its text leaves open are set in `_sizes`.
PRESETS: dict[str, EfficientConfig] = {
    "branchformer-4x768": _sizes("branchformer", "attention", 4, 768),
    "branchformer-12x1024": _sizes("branchformer", "attention", 12, 1024),
    "branchformer-sm-12x1024": _sizes("branchformer", "summary-mixing", 12, 1024),
    "conformer-4x768": _sizes("conformer", "attention", 4, 768),
    "conformer-12x1024": _sizes("conformer", "attention", 12, 1024),
    "conformer-sm-12x1024": _sizes("conformer", "summary-mixing", 12, 1024),
    # For tests, the CPU quickstart and smoke runs.
    "branchformer-sm-tiny": EfficientConfig("branchformer", "summary-mixing", 2, 64, n_heads=4, ffn_hidden=128,
                                            cgmlp_units=128, summary_hidden=32, kernel_size=15, front_channels=32),
}


class EfficientEncoder(Encoder):
    """Front end -> N blocks -> final LayerNorm. hidden_states[0] is the front end's output,
    hidden_states[k] block k's (the last one after the final LayerNorm)."""

    def __init__(self, config: EfficientConfig):
        super().__init__()
        self.config = c = config
        self.front_end = (WaveformFrontEnd(c.dim, c.front_channels) if c.front_end == "waveform"
                          else MelFrontEnd(c.dim, c.front_channels, c.sample_rate))
        self.dropout = nn.Dropout(c.dropout)
        if c.family == "branchformer":
            blocks = [BranchformerBlock(c.dim, c.n_heads, c.mixer, c.summary_hidden, c.cgmlp_units, c.kernel_size,
                                        c.dropout) for _ in range(c.num_layers)]
        else:
            blocks = [ConformerBlock(c.dim, c.n_heads, c.mixer, c.summary_hidden, c.ffn_hidden, c.kernel_size,
                                     c.dropout) for _ in range(c.num_layers)]
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(c.dim)
        self.sample_rate = c.sample_rate
        self.frame_rate = c.sample_rate / 960
        self.hidden_size = c.dim
        self.n_hidden_states = c.num_layers + 1
        self.receptive_field = self.front_end.receptive_field

    def n_frames(self, n_samples: int) -> int:
        return self.front_end.n_frames(n_samples)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Args:
            audio: [B, N] (or [N]) at 24 kHz; clips shorter than N are zero-padded at the end.
            lengths: [B] real lengths in samples (None: every clip fills N). Padded frames never
                reach the real ones: attention and SummaryMixing skip them, convolutions see zeros.
                Exact with the waveform front end; the mel front end's last few frames see the
                padding through the STFT window.
        """
        if audio.dim() == 1:
            audio = audio[None]
        if audio.shape[-1] < self.receptive_field:
            raise ValueError(f"audio of {audio.shape[-1]} samples is shorter than the encoder's receptive "
                             f"field ({self.receptive_field} samples)")
        x = self.front_end(audio)
        valid = None
        if lengths is not None:
            n = torch.tensor([self.n_frames(int(s)) for s in lengths], device=x.device)
            valid = torch.arange(x.shape[1], device=x.device)[None] < n[:, None]
        hidden = [x]
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x, valid)
            hidden.append(x)
        hidden[-1] = self.norm(x)
        return EncoderOutput(tuple(hidden))

    def write_files(self, folder: Path, *, pytorch_bin: bool = False) -> None:
        """`folder/model.safetensors`, the config in its metadata."""
        if pytorch_bin:
            raise ValueError("efficient encoders are saved as safetensors only")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, folder / WEIGHTS, metadata={"format": "pt", "melos_format": FORMAT,
                                                     "config": json.dumps(asdict(self.config))})


def read_metadata(file: Path) -> dict[str, str] | None:
    """The metadata of a melos efficient-encoder weights file (config included), or None if the
    file is not one."""
    with safe_open(file, framework="pt") as f:
        meta: dict[str, Any] = f.metadata() or {}
    return meta if meta.get("melos_format") == FORMAT else None


def read_config(file: Path) -> EfficientConfig | None:
    """The config in a melos efficient-encoder weights file, or None if the file is not one."""
    meta = read_metadata(file)
    return None if meta is None else EfficientConfig(**json.loads(meta["config"]))
