"""Frame-wise features of a mono signal: RMS envelopes, the low band, the spectrum, brightness.

Every curve here is on the centred frame grid of the analysis: frame k describes the audio
around sample k * hop_length, and a signal of N samples has 1 + N // hop_length frames (as a
centred STFT has), so curves from the waveform and from the spectrum line up frame for frame.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

LOW_BAND = (40.0, 400.0)  # Hz: the band voice-coil actuators and LRAs render
SHARPNESS_RANGE = (100.0, 8000.0)  # Hz: centroids mapped to sharpness 0 and 1


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames of the centred grid for `n_samples` of audio."""
    return 1 + n_samples // hop_length


def frame_rms(audio: np.ndarray, hop_length: int, window_length: int) -> np.ndarray:
    """RMS over a window centred on each frame, [1 + N // hop_length].

    Centred so the envelope is not delayed; near the ends the window is cut to the samples
    that exist (and the mean taken over those), so the first and last frames are not dimmed.

    Args:
        audio: mono waveform [N].
        hop_length: samples between frames.
        window_length: samples in each RMS window (10-20 ms for haptics).
    """
    energy = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    centres = np.arange(n_frames(len(audio), hop_length)) * hop_length
    lo = np.clip(centres - window_length // 2, 0, len(audio))
    hi = np.clip(centres + (window_length - window_length // 2), 0, len(audio))
    mean = (energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)
    return np.sqrt(np.maximum(mean, 0.0))  # cumsum differences can dip a hair below 0


def band_pass(audio: np.ndarray, sample_rate: int, band: tuple[float, float] = LOW_BAND,
              order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth band-pass (run forwards and backwards), so nothing is delayed.

    Returns:
        float64 waveform [N]; the response is the squared magnitude of an `order` filter.
    """
    sos = butter(order, band, btype="bandpass", fs=sample_rate, output="sos")
    if len(audio) <= 3 * (2 * len(sos) + 1):  # sosfiltfilt's padding needs a few samples
        return np.zeros(len(audio))
    return sosfiltfilt(sos, audio)


def stft_magnitude(audio: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """|STFT| with a periodic Hann window, centred frames and zero padding, [n_fft // 2 + 1, T]."""
    import librosa  # a second or so to import: only when audio is analysed

    spectrum = librosa.stft(zero_pad_to(audio, n_fft).astype(np.float32), n_fft=n_fft, hop_length=hop_length,
                            center=True, pad_mode="constant")
    return np.abs(spectrum[:, :n_frames(len(audio), hop_length)])


def zero_pad_to(audio: np.ndarray, length: int) -> np.ndarray:
    """`audio` with zeros appended up to `length` samples: centred frames of a clip shorter than
    the FFT see the same zeros either way, and librosa stops warning about it."""
    return np.pad(audio, (0, max(0, length - len(audio))))


def spectral_centroid(magnitude: np.ndarray, sample_rate: int, floor: float = 1e-4) -> np.ndarray:
    """Magnitude-weighted mean frequency (Hz) of each frame, [T]; 0 where a frame is silent.

    A frame counts as silent when its magnitude sum is below `floor` times the loudest frame's,
    so the centroid of fade-outs and digital silence does not jump around on rounding noise.
    """
    freqs = np.linspace(0.0, sample_rate / 2, magnitude.shape[0])
    total = magnitude.sum(axis=0)
    centroid = (freqs @ magnitude) / np.maximum(total, 1e-20)
    return np.where(total > floor * max(total.max(initial=0.0), 1e-20), centroid, 0.0)


def sharpness(centroid: np.ndarray, low: float = SHARPNESS_RANGE[0],
              high: float = SHARPNESS_RANGE[1]) -> np.ndarray:
    """Centroid (Hz) to haptic sharpness 0..1: log-frequency position between `low` and `high`.

    Log frequency because pitch and brightness are heard on a log scale; silent frames
    (centroid 0) get 0.
    """
    position = np.log(np.maximum(centroid, 1e-9) / low) / np.log(high / low)
    return np.clip(position, 0.0, 1.0)
