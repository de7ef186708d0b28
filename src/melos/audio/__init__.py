"""Audio input: decode any libsndfile format to float tensors, resample, and cut into windows."""

from .io import AUDIO_EXTENSIONS, AudioError, AudioInfo, audio_files, info, load
from .windows import AudioWindow, iter_windows, window_starts

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "AudioInfo",
    "AudioWindow",
    "audio_files",
    "info",
    "iter_windows",
    "load",
    "window_starts",
]
