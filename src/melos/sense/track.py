"""The haptic track: what every export format is written from.

Two kinds of layer, as in Core Haptics and every authoring tool:

    transients   short taps at a time, each with an intensity and a sharpness (0..1)
    continuous   a bed: amplitude and frequency (sharpness) envelopes as breakpoints (0..1)

One intensity law. `Transient.intensity` and `Continuous.amplitude` are on ONE physical scale:
drive amplitude, 0..1 of the actuator's full scale (the field names differ for history only). A
transient of intensity 0.5 and a bed at amplitude 0.5 drive the motor equally hard. Felt
intensity grows roughly with amplitude squared (spec section 9), so exporters whose device takes a
perceptual value convert, and the others write the amplitude as it is:

    AHAP (Core Haptics)      effective HapticIntensity = sqrt(amplitude), transients and bed alike
    .haptic (Meta / Lofelt)  the amplitude; the SDK takes sqrt on iOS (see export/lofelt.py)
    Android waveform         round(255 * amplitude)
    drive WAV, haptic Ogg    the carrier's envelope: burst peak = transient amplitude, bed = amplitude

So one transient reads back as the same amplitude from every file (tests/sense/test_pipeline.py).
Frequency is 0 (the dullest) .. 1 (the sharpest the device plays), in every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Transient:
    time: float  # seconds
    intensity: float  # 0..1: drive amplitude, the same physical scale as Continuous.amplitude
    sharpness: float  # 0..1
    layer: str = "onset"  # onset | beat | downbeat: what produced it


@dataclass
class Continuous:
    """Breakpoint envelopes on shared, strictly increasing times (seconds), values in 0..1."""

    times: np.ndarray  # [N]
    amplitude: np.ndarray  # [N]: drive amplitude 0..1 of full scale (as Transient.intensity)
    frequency: np.ndarray  # [N]: 0 = the lowest (dull), 1 = the highest (sharp) the device plays

    def at(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Amplitude and frequency at time(s) `t`, linearly interpolated, 0 outside the track."""
        return (np.interp(t, self.times, self.amplitude, left=0.0, right=0.0),
                np.interp(t, self.times, self.frequency, left=0.0, right=0.0))


@dataclass
class HapticTrack:
    duration: float  # seconds, the audio's length
    transients: list[Transient] = field(default_factory=list)
    continuous: Continuous = field(default_factory=lambda: Continuous(np.zeros(0), np.zeros(0), np.zeros(0)))

    def check(self) -> None:
        """Raise ValueError unless every time is inside [0, duration] and every value in 0..1."""
        c = self.continuous
        if not (len(c.times) == len(c.amplitude) == len(c.frequency)):
            raise ValueError("continuous layer: times, amplitude and frequency differ in length")
        if len(c.times) and (np.any(np.diff(c.times) <= 0) or c.times[0] < 0 or c.times[-1] > self.duration + 1e-9):
            raise ValueError("continuous layer: times must increase strictly inside [0, duration]")
        for name, values in (("amplitude", c.amplitude), ("frequency", c.frequency)):
            if len(values) and (np.any(values < 0) or np.any(values > 1) or not np.all(np.isfinite(values))):
                raise ValueError(f"continuous layer: {name} outside 0..1")
        for t in self.transients:
            if not (0 <= t.time <= self.duration and 0 <= t.intensity <= 1 and 0 <= t.sharpness <= 1):
                raise ValueError(f"transient out of range: {t}")
