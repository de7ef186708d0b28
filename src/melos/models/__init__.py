"""Encoders: the shared interface, MERT/HuBERT, and loading from presets or local checkpoints."""

from .encoder import Encoder, EncoderOutput
from .hf_layout import CheckpointError
from .loading import list_presets, load_encoder
from .mert import PRESETS, MERTConfig, MERTEncoder

__all__ = ["CheckpointError", "Encoder", "EncoderOutput", "MERTConfig", "MERTEncoder", "PRESETS",
           "list_presets", "load_encoder"]
