"""From audio to the features the connector reads: chosen hidden states, pooled in time, cached.

    waveform -> encoder rate -> 30 s chunks -> encoder -> hidden states `layers` [L, T_c, H]
             -> mean pooling by `stride` frames (the last group may be shorter) [L, ceil(T_c / stride), H]
             -> chunks concatenated in order [L, N, H]

The encoder is frozen in every stage of `melos lm train`, and pooling commutes with the
connector's layer fusion (both are linear), so these features are computed once per clip and
cached: training costs the LM, not the encoder. The cache key covers the encoder's weights, the
layers, the stride and the clip (path, size, modification time, offset, duration).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
from safetensors.torch import load_file, save_file

from ..audio import load
from ..evaluation.features import model_hash
from ..models import Encoder
from ..utils.atomic import atomic_file

CHUNK_SECONDS = 30.0  # long audio is encoded in chunks of this length, as the encoders were trained


@dataclass(frozen=True)
class Clip:
    """A span of an audio file: `duration` None reads to the end."""

    path: str
    offset: float = 0.0
    duration: float | None = None


class AudioFeaturizer:
    """Pooled hidden states of a frozen encoder, with an optional on-disk cache.

    Args:
        encoder: any melos encoder (frozen here: inference mode).
        layers: hidden-state indices to keep (0 = the encoder's input to its first layer).
        stride: frames averaged into one audio token (e.g. 15: 75 Hz -> 5 Hz).
        max_seconds: longest audio accepted; longer clips are an error naming the file.
        cache_dir: folder for cached features (None: no cache).
    """

    def __init__(self, encoder: Encoder, layers: list[int], stride: int, max_seconds: float = 120.0,
                 cache_dir: str | Path | None = None):
        bad = [k for k in layers if not 0 <= k < encoder.n_hidden_states]
        if not layers or bad:
            raise ValueError(f"layers must be hidden-state indices 0..{encoder.n_hidden_states - 1}, got {layers}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1 frame, got {stride}")
        self.encoder, self.layers, self.stride, self.max_seconds = encoder.eval(), list(layers), stride, max_seconds
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._key: str | None = None

    @property
    def key(self) -> str:
        """Hash of the encoder's weights and the feature settings (the cache folder's name)."""
        if self._key is None:
            settings = json.dumps([model_hash(self.encoder), self.layers, self.stride, CHUNK_SECONDS])
            self._key = hashlib.sha256(settings.encode()).hexdigest()[:16]
        return self._key

    def n_tokens(self, n_samples: int) -> int:
        """Audio tokens for `n_samples` at the encoder's rate: per 30 s chunk, ceil(frames / stride)."""
        chunk = round(CHUNK_SECONDS * self.encoder.sample_rate)
        sizes = [chunk] * (n_samples // chunk) + ([n_samples % chunk] if n_samples % chunk else [])
        return sum(math.ceil(self.encoder.n_frames(max(n, self.encoder.receptive_field)) / self.stride)
                   for n in sizes)

    @torch.inference_mode()
    def features(self, audio: np.ndarray | torch.Tensor, sample_rate: int, name: str = "audio") -> torch.Tensor:
        """Pooled features [L, N, H] (float32, CPU) of a mono waveform [N] at `sample_rate`."""
        x = torch.as_tensor(audio, dtype=torch.float32).reshape(-1).numpy()
        if x.size == 0:
            raise ValueError(f"{name}: audio is empty")
        if x.size / sample_rate > self.max_seconds + 1e-6:
            raise ValueError(f"{name}: {x.size / sample_rate:.1f} s of audio, longer than the configured maximum "
                             f"of {self.max_seconds:g} s (max_audio_seconds)")
        rate = self.encoder.sample_rate
        if sample_rate != rate:
            x = soxr.resample(x, sample_rate, rate, quality="HQ").astype(np.float32)
        parameter = next(self.encoder.parameters())
        chunk = round(CHUNK_SECONDS * rate)
        pieces = []
        for start in range(0, len(x), chunk):
            piece = x[start:start + chunk]
            if len(piece) < self.encoder.receptive_field:
                piece = np.pad(piece, (0, self.encoder.receptive_field - len(piece)))
            states = self.encoder(torch.from_numpy(piece)[None].to(parameter.device, parameter.dtype)).hidden_states
            chosen = torch.stack([states[k][0] for k in self.layers]).float()  # [L, T, H]
            pieces.append(pool(chosen, self.stride))
        out = torch.cat(pieces, dim=1).cpu()
        assert out.shape[1] == self.n_tokens(len(x)), "pooled length disagrees with n_tokens"
        return out

    def clip_features(self, clip: Clip) -> torch.Tensor:
        """Pooled features [L, N, H] of a file span, from the cache when it has them."""
        path = self._cache_path(clip)
        if path is not None and path.is_file():
            return load_file(path)["features"]
        audio = load(clip.path, self.encoder.sample_rate, mono=True, offset=clip.offset, duration=clip.duration)
        out = self.features(audio, self.encoder.sample_rate, name=clip.path)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(path) as tmp:
                save_file({"features": out.contiguous()}, str(tmp))
        return out

    def _cache_path(self, clip: Clip) -> Path | None:
        if self.cache_dir is None:
            return None
        stat = os.stat(clip.path)
        item = json.dumps([os.path.abspath(clip.path), stat.st_size, stat.st_mtime_ns, clip.offset, clip.duration])
        return self.cache_dir / self.key / f"{hashlib.sha256(item.encode()).hexdigest()[:24]}.safetensors"


def pool(states: torch.Tensor, stride: int) -> torch.Tensor:
    """Mean over groups of `stride` frames along dim 1 of [L, T, H]; the last group may be shorter."""
    n_layers, length, width = states.shape
    groups = math.ceil(length / stride)
    padded = torch.nn.functional.pad(states, (0, 0, 0, groups * stride - length))
    counts = torch.full((groups,), float(stride), device=states.device)
    counts[-1] = length - (groups - 1) * stride
    return padded.reshape(n_layers, groups, stride, width).sum(dim=2) / counts[None, :, None]
