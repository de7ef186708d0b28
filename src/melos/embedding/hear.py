"""HEAR-compatible module (hear-eval-kit's common API) for any melos encoder.

    python -m heareval.embeddings.runner melos.embedding.hear --model mert-v1-95m

`load_model` takes what `melos.load_encoder` takes (a preset, a local checkpoint directory).
HEAR accepts only 16, 22.05, 44.1 and 48 kHz input (its tasks are pre-resampled to one of
them), so the model declares the accepted rate that suits its encoder (48 kHz for the 24 kHz
MERT and efficient presets) and resamples each clip to the encoder's rate with soxr "HQ", as
`melos embed` does; embeddings therefore equal `melos embed`'s on the same audio, and
timestamps stay in milliseconds of the caller's audio. Embeddings are one hidden state, or by
default the mean of all of them ("mean"), so the size is the encoder's hidden size. Clips longer
than 30 s are encoded in 30 s chunks. The module passes hear-eval-kit's `hearvalidator`.
"""

from __future__ import annotations

import numpy as np
import soxr
import torch
from torch import nn

from ..audio.io import RESAMPLE_QUALITY
from ..models import Encoder, load_encoder

CHUNK_SECONDS = 30.0
HEAR_SAMPLE_RATES = (16000, 22050, 44100, 48000)


def hear_sample_rate(encoder_rate: int) -> int:
    """The HEAR input rate for an encoder at `encoder_rate` Hz.

    Its own rate if HEAR accepts it; else the lowest accepted integer multiple (24 kHz -> 48 kHz,
    an exact 2:1 decimation); else the lowest accepted rate above it, so no band is lost.
    """
    if encoder_rate in HEAR_SAMPLE_RATES:
        return encoder_rate
    multiples = [r for r in HEAR_SAMPLE_RATES if r % encoder_rate == 0]
    above = [r for r in HEAR_SAMPLE_RATES if r > encoder_rate]
    return (multiples or above or [HEAR_SAMPLE_RATES[-1]])[0]


class HearModel(nn.Module):
    """An encoder plus the attributes HEAR asks for; `sample_rate` is the HEAR input rate."""

    def __init__(self, encoder: Encoder, layer: int | str = "mean"):
        super().__init__()
        if layer != "mean" and not (isinstance(layer, int) and -encoder.n_hidden_states <= layer < encoder.n_hidden_states):
            raise ValueError(f"layer must be 'mean' or a hidden-state index below {encoder.n_hidden_states}, got {layer!r}")
        self.encoder, self.layer = encoder.eval(), layer
        self.sample_rate = hear_sample_rate(encoder.sample_rate)
        self.scene_embedding_size = self.timestamp_embedding_size = encoder.hidden_size

    def resample(self, audio: torch.Tensor) -> torch.Tensor:
        """[n_sounds, N] at `sample_rate` -> [n_sounds, M] float32 at the encoder's rate, same device.

        soxr on CPU, one clip at a time, exactly as `melos.audio` resamples files for `melos embed`.
        """
        rate = self.encoder.sample_rate
        if self.sample_rate == rate:
            return audio.float()
        clips = audio.detach().float().cpu().numpy()
        out = np.stack([soxr.resample(clip, self.sample_rate, rate, quality=RESAMPLE_QUALITY) for clip in clips])
        return torch.from_numpy(out).to(audio.device)

    def frames(self, audio: torch.Tensor) -> torch.Tensor:
        """[n_sounds, N] at the encoder's rate -> [n_sounds, T, H]; long clips in 30 s chunks."""
        chunk = int(CHUNK_SECONDS * self.encoder.sample_rate)
        pieces = [audio[:, i:i + chunk] for i in range(0, audio.shape[1], chunk)]
        if len(pieces) > 1 and pieces[-1].shape[1] < self.encoder.receptive_field:  # fold a too-short tail
            pieces[-2:] = [torch.cat(pieces[-2:], dim=1)]
        out = []
        for piece in pieces:
            states = self.encoder(piece).hidden_states
            out.append(torch.stack(states).mean(0) if self.layer == "mean" else states[self.layer])
        return torch.cat(out, dim=1)

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """[n_sounds, N] at `sample_rate` -> frame embeddings [n_sounds, T, H] on the model's device."""
        device = next(self.parameters()).device
        return self.frames(self.resample(audio).to(device))


def load_model(model_file_path: str = "mert-v1-95m", layer: int | str = "mean", device: str | None = None) -> HearModel:
    """HEAR entry point: the model at `model_file_path` (preset name or checkpoint directory)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return HearModel(load_encoder(model_file_path or "mert-v1-95m", device=device), layer)


@torch.inference_mode()
def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Args: audio [n_sounds, N] at model.sample_rate.

    Returns embeddings [n_sounds, T, H] and timestamps [n_sounds, T] in milliseconds: the
    centre of each frame's receptive field, a physical time, so independent of the resampling.
    """
    emb = model.embed(audio)
    rate = model.encoder.sample_rate
    hop = rate / model.encoder.frame_rate  # encoder samples per frame (320 for MERT)
    centre = model.encoder.receptive_field / 2
    times = (torch.arange(emb.shape[1], device=emb.device) * hop + centre) / rate * 1000.0
    return emb, times.expand(emb.shape[0], -1)


@torch.inference_mode()
def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """Args: audio [n_sounds, N] at model.sample_rate. Returns [n_sounds, H], the frames' time average."""
    return model.embed(audio).mean(dim=1)
