"""A picture of a haptic track under the audio it came from (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils.plotting import pyplot, save_figure
from .analysis import Analysis
from .track import HapticTrack

LAYER_COLOURS = {"onset": "tab:red", "beat": "tab:blue", "downbeat": "navy"}


def plot_track(audio: np.ndarray, sample_rate: int, analysis: Analysis, track: HapticTrack, path: str | Path,
               title: str = "") -> Path:
    """Three lanes on one time axis: the waveform with beats, the continuous layer (amplitude
    filled, frequency as a line), and the transients as stems of their intensity."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(10, 5.5), sharex=True, height_ratios=[1.2, 1, 1])
    t = np.arange(len(audio)) / sample_rate
    step = max(1, len(audio) // 20000)  # a waveform drawn from at most ~20k points
    axes[0].plot(t[::step], audio[::step], color="0.35", linewidth=0.5)
    for beat in analysis.beats:
        axes[0].axvline(beat, color="tab:blue", alpha=0.25, linewidth=0.8)
    axes[0].set(ylabel="audio", title=title or "audio and its haptic track")
    c = track.continuous
    axes[1].fill_between(c.times, c.amplitude, color="tab:orange", alpha=0.5, label="amplitude")
    axes[1].plot(c.times, c.frequency, color="tab:purple", linewidth=1, label="frequency (sharpness)")
    axes[1].set(ylabel="continuous", ylim=(0, 1.05))
    axes[1].legend(fontsize=7, loc="upper right")
    for layer, colour in LAYER_COLOURS.items():
        mine = [x for x in track.transients if x.layer == layer]
        if mine:
            times, heights = [x.time for x in mine], [x.intensity for x in mine]
            axes[2].vlines(times, 0, heights, color=colour, linewidth=1.2, label=layer)
            axes[2].plot(times, heights, "o", color=colour, markersize=2.5)
    axes[2].set(ylabel="transients", xlabel="time (s)", ylim=(0, 1.05))
    if track.transients:
        axes[2].legend(fontsize=7, loc="upper right")
    for ax in axes:
        ax.grid(alpha=0.25)
    return save_figure(fig, path)
