"""EnCodec tokens: MERT's acoustic teacher.

A frozen EnCodec 24 kHz model turns audio into residual-vector-quantized (RVQ) tokens: at 6 kbps that
is K = 8 codebooks of C = 1024 codewords at 75 Hz (hop 320). The student predicts, for every encoder
frame, the K tokens of the same frame, so the teacher's frames are cropped to the encoder's frames.

Frame alignment at 24 kHz (both hop 320; the student's frame t sees samples [320 t, 320 t + 400),
the causal codec's frame t summarises samples up to 320 (t + 1)):

    samples   0        320       640       960      ...                N
              |---------|---------|---------|--- ... ---|---------|----|
    codec     [  tok 0  ][  tok 1  ][  tok 2  ]   ...   [tok T-1  ][ T ]...   ceil(N / 320) frames
    encoder   [  frame 0  ]                                                   floor((N - 400) / 320) + 1
                        [  frame 1  ]                                         frames
                                  [  frame 2  ]  ...    [frame T-1  ]
    targets   tokens[..., :T]  (the codec's trailing, partly padded frames are dropped)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn
from transformers import EncodecConfig, EncodecModel

WEIGHT_FILES = (
    "model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def align_tokens(tokens: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Crop codec tokens to the encoder's frame count, so token t is the target of encoder frame t.

    Both run at 75 Hz from sample 0; the codec pads the end and yields ceil(N / 320) frames, the
    encoder floor((N - 400) / 320) + 1, never more (see the module docstring).

    Args:
        tokens: [B, K, T_codec] codec tokens.
        n_frames: T, the encoder's number of frames for the same audio.

    Returns:
        [B, K, T] the first T frames.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if tokens.shape[-1] < n_frames:
        raise ValueError(f"the codec gave {tokens.shape[-1]} frames but the encoder has {n_frames}: "
                         "the teacher and the student disagree on the hop or the sample rate")
    return tokens[..., :n_frames]


class EncodecTokenizer(nn.Module):
    """Frozen EnCodec that maps mono 24 kHz audio [B, N] to RVQ tokens [B, K, T_codec].

    Args:
        model: a transformers `EncodecModel`; it is put in eval mode and frozen.
        bandwidth: target bandwidth in kbps; it fixes the number of codebooks K (6.0 -> 8 for 24 kHz).
    """

    def __init__(self, model: EncodecModel, bandwidth: float = 6.0):
        super().__init__()
        config = model.config
        if bandwidth not in config.target_bandwidths:
            raise ValueError(f"bandwidth {bandwidth} is not one of this model's {list(config.target_bandwidths)}")
        if config.chunk_length_s is not None:
            raise ValueError("chunked EnCodec (e.g. the 48 kHz model) is not supported; use encodec_24khz")
        if config.audio_channels != 1:
            raise ValueError(f"expected a mono EnCodec, got audio_channels={config.audio_channels}")
        self.model = model.float().eval().requires_grad_(False)
        self.bandwidth = float(bandwidth)
        self.sample_rate: int = config.sampling_rate
        self.hop_length: int = config.hop_length
        self.frame_rate: int = config.frame_rate
        self.codebook_size: int = config.codebook_size
        self.n_codebooks: int = model.quantizer.get_num_quantizers_for_bandwidth(bandwidth)

    @classmethod
    def from_pretrained(cls, path: str | Path, bandwidth: float = 6.0) -> EncodecTokenizer:
        """Load a local directory in the `facebook/encodec_24khz` layout; never touches the network.

        Args:
            path: directory holding config.json and model.safetensors (or pytorch_model.bin).
            bandwidth: target bandwidth in kbps.
        """
        path = Path(path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such EnCodec checkpoint directory (melos never downloads; "
                                    "fetch facebook/encodec_24khz first and pass its local directory)")
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{path}: no config.json, not an EnCodec checkpoint directory")
        model_type = json.loads(config_file.read_text()).get("model_type")
        if model_type != "encodec":
            raise ValueError(f"{path}: config.json has model_type {model_type!r}, expected 'encodec'")
        if not any((path / name).is_file() for name in WEIGHT_FILES):
            raise FileNotFoundError(f"{path}: no weights, expected one of {', '.join(WEIGHT_FILES)}")
        try:
            model = EncodecModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: could not load an EnCodec checkpoint: {error}") from error
        return cls(model, bandwidth)

    @classmethod
    def tiny(cls, seed: int = 0) -> EncodecTokenizer:
        """A tiny random EnCodec for tests and CPU quickstarts: real 24 kHz, hop 320, K = 8, but C = 64.

        Bandwidth 3.6 kbps = 8 codebooks x log2(64) bits x 75 Hz. The codebooks (all zeros in a fresh
        transformers model) are seeded with encoder outputs of noise of varying loudness, as EnCodec's k-means
        init does, so tokens vary. The global RNG is left untouched.
        """
        config = EncodecConfig(target_bandwidths=[3.6], upsampling_ratios=[8, 5, 4, 2], num_filters=4,
                               hidden_size=16, num_lstm_layers=1, codebook_size=64)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = EncodecModel(config).eval()
            with torch.no_grad():
                gains = torch.randn(1, 1, 40).exp().repeat_interleave(config.sampling_rate // 10, dim=-1)
                noise = gains * torch.randn(1, 1, 4 * config.sampling_rate)  # 4 s, loudness varies every 0.1 s
                residual = model.encoder(noise)[0].T  # [T, D]
                for layer in model.quantizer.layers:
                    codebook = layer.codebook
                    picks = torch.randperm(residual.shape[0])[: config.codebook_size]
                    codebook.embed.copy_(residual[picks])
                    codebook.embed_avg.copy_(residual[picks])
                    residual = residual - codebook.embed[codebook.quantize(residual)]
        return cls(model, bandwidth=3.6)

    def train(self, mode: bool = True) -> EncodecTokenizer:
        """Stay in eval mode: the teacher is frozen."""
        return super().train(False)

    def n_frames(self, n_samples: int) -> int:
        """Codec frames for `n_samples` samples: ceil(N / hop), as EnCodec pads the end."""
        return math.ceil(n_samples / self.hop_length)

    @torch.no_grad()
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Tokenize mono audio.

        Runs in float32 even under autocast: each RVQ stage is a nearest-neighbour search on the
        previous stage's residual, so half-precision rounding flips near-ties and the errors
        compound down the codebooks.

        Args:
            audio: [B, N] float waveform at 24 kHz.

        Returns:
            [B, K, T_codec] int64 tokens in [0, C), T_codec = ceil(N / 320).
        """
        if audio.dim() != 2:
            raise ValueError(f"expected mono audio [B, N], got shape {tuple(audio.shape)}")
        with torch.autocast(device_type=audio.device.type, enabled=False):
            codes = self.model.encode(audio.float()[:, None, :], bandwidth=self.bandwidth,
                                      return_dict=True).audio_codes  # [1 chunk, B, K, T]
        return codes[0]
