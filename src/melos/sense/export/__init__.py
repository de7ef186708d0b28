"""Haptic track exporters, one module per format, each with the validator every write passes first.

    ahap      Apple Core Haptics AHAP JSON (iOS)
    android   VibrationEffect.createWaveform JSON; Ogg Vorbis with haptic channels (ANDROID_HAPTIC)
    lofelt    Meta Haptics Studio / Lofelt `.haptic` v1 JSON
    drive     voice-coil drive signal (`render_drive`) and its 8 kHz mono WAV
    ogg       Vorbis comments: reading them and adding free-form tags
    html      sense.html: an offline page (lanes, playhead, vibration, live mode); imported lazily
    video     video.mp4: the scrolling score and an audio-reactive panel (PyAV); imported lazily
"""

from .ahap import to_ahap, validate_ahap, write_ahap
from .android import (
    to_waveform,
    validate_haptic_ogg,
    validate_waveform,
    write_haptic_ogg,
    write_waveform,
)
from .drive import band_share, render_drive, validate_drive, write_drive
from .lofelt import to_lofelt, validate_lofelt, write_lofelt
from .ogg import read_ogg_tags, set_vorbis_tags

__all__ = [
    "band_share", "read_ogg_tags", "render_drive", "set_vorbis_tags", "to_ahap", "to_lofelt",
    "to_waveform", "validate_ahap", "validate_drive", "validate_haptic_ogg", "validate_lofelt",
    "validate_waveform", "write_ahap", "write_drive", "write_haptic_ogg", "write_lofelt",
    "write_waveform",
]
