"""Stems and their RMS envelopes on the analysis frame grid.

Backends, chosen by a string:

    "hpss"          harmonic/percussive separation by median filtering (Fitzgerald 2010, via
                    librosa): stems "harmonic" (sustained, pitched) and "percussive" (attacks).
    "none"          no stems (the fastest analysis).
    "demucs:PATH"   recognised but not supported: Demucs checkpoints are pickled Python objects,
                    and melos only loads weights it can read with torch.load(weights_only=True).

Each stem is turned back into a waveform and given the same RMS envelope as the mix, so stem
envelopes and `Analysis.rms` share a scale (harmonic + percussive add up to the mix).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .features import frame_rms, zero_pad_to

HPSS_WINDOW = 0.02  # seconds: STFT window (rounded up to a power of two) and hop for HPSS
HPSS_KERNEL = 17  # median lengths: 17 frames (340 ms) across time, 17 bins (800 Hz) across frequency


def parse_stems(spec: str) -> tuple[str, Path | None]:
    """Split a `stems=` setting into (backend, checkpoint path); raise on anything unusable."""
    name, _, path = spec.partition(":")
    if name in ("hpss", "none") and not path:
        return name, None
    if name == "demucs":
        if not path:
            raise ValueError("stems=demucs needs a checkpoint path: stems=demucs:PATH (a file you downloaded; "
                             "melos never downloads weights)")
        if not Path(path).is_file():
            raise FileNotFoundError(f"stems=demucs:PATH: no checkpoint file at {path}")
        raise ValueError(f"stems=demucs:{path} is not supported: Demucs checkpoints are pickled Python objects and "
                         "melos only loads weights with torch.load(weights_only=True); use stems=hpss")
    raise ValueError(f"unknown stems backend {spec!r}; choose 'hpss', 'none' or 'demucs:PATH'")


def separate(spec: str, audio: np.ndarray, sample_rate: int, hop_length: int,
             window_length: int) -> dict[str, np.ndarray]:
    """Stem name -> RMS envelope [1 + N // hop_length] with the backend `spec` names.

    Args:
        spec: "hpss" or "none" (see the module docstring).
        audio: mono waveform [N].
        sample_rate: its rate in Hz.
        hop_length: samples between analysis frames.
        window_length: samples in each RMS window (as for the mix).
    """
    backend, _ = parse_stems(spec)
    if backend == "none":
        return {}
    return {name: frame_rms(stem, hop_length, window_length)
            for name, stem in hpss(audio, sample_rate).items()}


def hpss(audio: np.ndarray, sample_rate: int, window: float = HPSS_WINDOW,
         kernel_size: int = HPSS_KERNEL) -> dict[str, np.ndarray]:
    """Harmonic and percussive waveforms [N] from soft (Wiener) masks of median-filtered spectra.

    The STFT is coarse on purpose (20 ms hop, ~21 ms window at 24 kHz): median filtering costs
    most of the analysis time, and envelopes for haptics do not need finer spectra.
    """
    import librosa

    n_fft = 1 << max(1, int(np.ceil(np.log2(window * sample_rate))))
    stft_hop = max(1, round(window * sample_rate))
    spectrum = librosa.stft(zero_pad_to(audio, n_fft).astype(np.float32), n_fft=n_fft, hop_length=stft_hop, center=True,
                            pad_mode="constant")  # [F, T']
    harmonic, percussive = librosa.decompose.hpss(np.abs(spectrum), kernel_size=kernel_size, mask=True)
    return {name: librosa.istft(spectrum * mask, hop_length=stft_hop, n_fft=n_fft,
                                length=max(len(audio), n_fft))[:len(audio)]
            for name, mask in (("harmonic", harmonic), ("percussive", percussive))}
