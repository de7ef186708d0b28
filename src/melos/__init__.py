"""melos: music audio foundation models — pre-train, adapt, merge, evaluate and serve music encoders."""

from .models import Encoder, EncoderOutput, MERTConfig, MERTEncoder, load_encoder

__version__ = "0.1.0"

__all__ = ["Encoder", "EncoderOutput", "MERTConfig", "MERTEncoder", "load_encoder", "__version__"]
