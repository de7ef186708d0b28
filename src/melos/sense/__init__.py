"""SENSE: music to haptic tracks, time-aligned with the audio and measured against it.

    analysis (envelopes, onsets, beats, stems) -> mapping -> HapticTrack -> export (AHAP, Android,
    Ogg with haptic channels, Meta/Lofelt .haptic, voice-coil drive WAV, the HTML page, MP4 video)
    audio blocks -> SenseStream (causal, 10 ms look-ahead) -> haptic events as they happen
"""

from .analysis import Analysis, analyze, analyze_file
from .live import LiveConfig, SenseStream
from .mapping import PRESETS, to_track
from .pipeline import DEFAULT_FORMATS, FORMATS, sense, track_of
from .track import Continuous, HapticTrack, Transient

__all__ = ["Analysis", "Continuous", "analyze", "analyze_file", "DEFAULT_FORMATS", "FORMATS", "HapticTrack", "LiveConfig", "PRESETS", "SenseStream", "Transient", "sense", "to_track",
           "track_of"]
