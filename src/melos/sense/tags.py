"""Per-section tags from a probe `melos probe` saved (`melos sense --model SRC --probe FILE`).

    audio -> windows of the task's window and hop -> every hidden state mean-pooled [L, W, H]
          -> the probe (its standardisation and layer choice) -> probabilities [W, C]
          -> mean over the windows whose centre lies in a section -> tag -> probability

A section keeps its TOP_K most probable tags, and any other above THRESHOLD, so a reader sees
both what the probe leans to and everything it is confident about.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..evaluation.features import model_hash
from ..evaluation.saved_probe import SavedProbe
from ..models.encoder import Encoder
from .analysis import Section
from .sections import window_states

TOP_K = 5
THRESHOLD = 0.5


def load_probe(path: str | Path, encoder: Encoder) -> SavedProbe:
    """The probe at `path`, refused unless it gives tags and was trained on `encoder`'s features."""
    probe = SavedProbe.load(path)
    if probe.type == "regression":
        raise ValueError(f"{path}: a regression probe ({probe.task}) gives values, not tags")
    weights = model_hash(encoder)
    if weights != probe.model_hash:
        raise ValueError(f"{path}: this probe was trained on another encoder (model hash {probe.model_hash}, "
                         f"--model has {weights}); give the --model it was probed with")
    return probe


def section_tags(audio: np.ndarray, sample_rate: int, encoder: Encoder, probe: SavedProbe,
                 sections: list[Section]) -> list[Section]:
    """`sections` with their tags filled (see the module docstring).

    Args:
        audio: waveform [N] or [C, N] at `sample_rate`.
        encoder: the encoder the probe was trained on (see `load_probe`).
        sections: consecutive sections covering the recording; one without a window centre
            takes the window nearest its middle.
    """
    times, states = window_states(audio, sample_rate, encoder, probe.window, probe.hop)
    probabilities = probe.predict(torch.from_numpy(states).float()).numpy()  # [W, C]
    for section in sections:
        inside = (times >= section.start) & (times < section.end)
        if not inside.any():
            inside = np.arange(len(times)) == np.argmin(np.abs(times - (section.start + section.end) / 2))
        mean = probabilities[inside].mean(axis=0)
        order = np.argsort(-mean, kind="stable")
        section.tags = {probe.labels[c]: round(float(mean[c]), 3) for rank, c in enumerate(order)
                        if rank < TOP_K or mean[c] > THRESHOLD}
    return sections
