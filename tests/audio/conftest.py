"""Fabricated audio files for the audio tests; everything is written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def _tone(freq: float, sample_rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    waves = [0.5 * np.sin(2 * np.pi * freq * t + c) for c in range(channels)]
    audio = np.stack(waves, axis=1) if channels > 1 else waves[0]
    return audio.astype(np.float32)


@pytest.fixture
def tone() -> Callable[..., np.ndarray]:
    """tone(freq, sample_rate, seconds, channels=1) -> float32 sine at 0.5 amplitude, [N] or
    [N, C] with a different phase per channel."""
    return _tone


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(name, audio [N] or [N, C], sample_rate, **soundfile_kwargs) -> path in tmp_path."""

    def _write(name: str, audio: np.ndarray, sample_rate: int, **kwargs) -> Path:
        path = tmp_path / name
        sf.write(path, audio, sample_rate, **kwargs)
        return path

    return _write


@pytest.fixture
def noise() -> Callable[..., np.ndarray]:
    """noise(n, channels=1) -> float32 white noise in [-0.5, 0.5), [N] or [N, C], seeded."""
    rng = np.random.default_rng(0)

    def _noise(n: int, channels: int = 1) -> np.ndarray:
        shape = (n, channels) if channels > 1 else (n,)
        return (rng.random(shape) - 0.5).astype(np.float32)

    return _noise
