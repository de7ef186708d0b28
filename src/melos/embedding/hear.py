"""HEAR-compatible module (hear-eval-kit's common API) for any melos encoder.

    python -m heareval.embeddings.runner melos.embedding.hear --model mert-v1-95m

`load_model` takes what `melos.load_encoder` takes (a preset, a local checkpoint directory).
Embeddings are one hidden state, or by default the mean of all of them ("mean"), so the size
is the encoder's hidden size. Clips longer than 30 s are encoded in 30 s chunks.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import Encoder, load_encoder

CHUNK_SECONDS = 30.0


class HearModel(nn.Module):
    """An encoder plus the attributes HEAR asks for."""

    def __init__(self, encoder: Encoder, layer: int | str = "mean"):
        super().__init__()
        if layer != "mean" and not (isinstance(layer, int) and -encoder.n_hidden_states <= layer < encoder.n_hidden_states):
            raise ValueError(f"layer must be 'mean' or a hidden-state index below {encoder.n_hidden_states}, got {layer!r}")
        self.encoder, self.layer = encoder.eval(), layer
        self.sample_rate = encoder.sample_rate
        self.scene_embedding_size = self.timestamp_embedding_size = encoder.hidden_size

    def frames(self, audio: torch.Tensor) -> torch.Tensor:
        """[n_sounds, N] -> [n_sounds, T, H]; long clips in 30 s chunks, frames concatenated."""
        chunk = int(CHUNK_SECONDS * self.sample_rate)
        pieces = [audio[:, i:i + chunk] for i in range(0, audio.shape[1], chunk)]
        if len(pieces) > 1 and pieces[-1].shape[1] < self.encoder.receptive_field:  # fold a too-short tail
            pieces[-2:] = [torch.cat(pieces[-2:], dim=1)]
        out = []
        for piece in pieces:
            states = self.encoder(piece).hidden_states
            out.append(torch.stack(states).mean(0) if self.layer == "mean" else states[self.layer])
        return torch.cat(out, dim=1)


def load_model(model_file_path: str = "mert-v1-95m", layer: int | str = "mean", device: str | None = None) -> HearModel:
    """HEAR entry point: the model at `model_file_path` (preset name or checkpoint directory)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return HearModel(load_encoder(model_file_path or "mert-v1-95m", device=device), layer)


@torch.inference_mode()
def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Args: audio [n_sounds, N] at model.sample_rate.

    Returns embeddings [n_sounds, T, H] and timestamps [n_sounds, T] in milliseconds: the
    centre of each frame's receptive field.
    """
    device = next(model.parameters()).device
    emb = model.frames(audio.to(device))
    hop = model.sample_rate / model.encoder.frame_rate  # samples per frame (320 for MERT)
    centre = model.encoder.receptive_field / 2
    times = (torch.arange(emb.shape[1], device=device) * hop + centre) / model.sample_rate * 1000.0
    return emb, times.expand(emb.shape[0], -1)


@torch.inference_mode()
def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """Args: audio [n_sounds, N]. Returns [n_sounds, H]: the time average of the frame embeddings."""
    return model.frames(audio.to(next(model.parameters()).device)).mean(dim=1)
