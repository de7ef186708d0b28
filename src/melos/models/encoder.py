"""The small surface every melos encoder offers, so evaluation, merging and applications never
care which backbone they hold."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..utils.atomic import atomic_dir


@dataclass
class EncoderOutput:
    """Hidden states of every layer, indexed as the official model returns them.

    Attributes:
        hidden_states: tuple of float tensors of shape [B, T, H]; index 0 is the encoder input,
            index k the output of layer k (papers' "layer k"); the last equals
            `last_hidden_state`.
    """

    hidden_states: tuple[torch.Tensor, ...]
    features: torch.Tensor | None = None  # front-end features [B, T, C] before projection

    @property
    def last_hidden_state(self) -> torch.Tensor:
        return self.hidden_states[-1]


class Encoder(nn.Module, ABC):
    """A frozen-or-trainable audio encoder: raw mono audio in, one hidden state per layer out."""

    sample_rate: int
    frame_rate: float
    hidden_size: int
    n_hidden_states: int
    receptive_field: int  # samples seen by one output frame

    @abstractmethod
    def forward(self, audio: torch.Tensor) -> EncoderOutput:
        """Args: audio, float tensor of shape [B, N] at `sample_rate` (equal-length clips)."""

    @abstractmethod
    def n_frames(self, n_samples: int) -> int:
        """Number of output frames T for a clip of `n_samples`."""

    @abstractmethod
    def write_files(self, folder: Path, *, pytorch_bin: bool = False) -> None:
        """Write the model's files into the existing `folder`, not atomically (see `save_pretrained`)."""

    def save_pretrained(self, path: str | Path, *, pytorch_bin: bool = False) -> Path:
        """Write the model to a directory that `melos.load_encoder` reads back exactly; the
        directory appears (or replaces an existing one) only once complete."""
        with atomic_dir(path) as folder:
            self.write_files(folder, pytorch_bin=pytorch_bin)
        return Path(path)
