"""Sections of a recording from a melos encoder, and how strongly each should be felt.

    audio -> encoder rate -> windows (2 s, hop 1 s) -> mean over layers and frames -> [W, H]
          -> centred cosine self-similarity [W, W] -> Foote checkerboard novelty [W]
          -> peaks above an adaptive threshold, >= min_section apart -> boundaries (s)
          -> sections, each with an intensity and a density from its loudness relative to the track

Novelty k measures the change between window k - 1 and window k, so a boundary is dated midway
between their centres. Intensity rule: clip(section mean RMS / track mean RMS, 0.6, 1.3), so a
quiet intro is felt gentler and a loud chorus stronger; a track with one section keeps 1.0, as
there is nothing to contrast it with. The reference is the track's mean, not its median: in
sparse, percussive music most frames lie between hits, and a median would rate such a section
against its own silences. Density rule: clip(the same ratio, 0.5, 1.0), the fraction of a
section's onset transients kept (strongest first): a quiet intro is felt sparser as well as
gentler, while a section at or above the track's loudness keeps every transient and its beat
taps (e.g. a denser chorus against a sparse verse).
"""

from __future__ import annotations

from itertools import groupby

import numpy as np
import soxr
import torch

from ..audio import window_starts
from ..models.encoder import Encoder
from .analysis import Section

INTENSITY_RANGE = (0.6, 1.3)  # quietest and loudest section scale (mapping allows 0..1.5)
DENSITY_RANGE = (0.5, 1.0)  # sparsest and densest section: fraction of onset transients kept
MIN_NOVELTY = 0.05  # absolute floor on a boundary's novelty (novelty lies in -1..1)
RESAMPLE_QUALITY = "HQ"  # as melos.audio


def window_embeddings(audio: np.ndarray, sample_rate: int, encoder: Encoder, window: float = 2.0,
                      hop: float = 1.0, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """One embedding per window: the encoder's hidden states averaged over layers and frames.
    Arguments as `window_states`; returns window centres (s) [W] and float64 embeddings [W, H]."""
    times, states = window_states(audio, sample_rate, encoder, window, hop, batch_size)
    return times, states.mean(axis=0)


@torch.inference_mode()
def window_states(audio: np.ndarray, sample_rate: int, encoder: Encoder, window: float = 2.0,
                  hop: float = 1.0, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Every hidden state averaged over the frames of each window (the features probes read).

    Args:
        audio: waveform [N] or [C, N] (channels are averaged) at `sample_rate`.
        encoder: any melos encoder; the audio is resampled to its rate with soxr.
        window, hop: window length and distance between window starts in seconds (see
            `melos.audio.window_starts`; only the last window may be shorter).
        batch_size: windows per forward pass; windows of equal length are batched together.

    Returns:
        times: window centres in seconds, [W]; states: float64 [n_layers, W, H].
    """
    x = np.asarray(audio, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"audio must be a non-empty [N] or [C, N] array, got shape {np.shape(audio)}")
    rate = encoder.sample_rate
    if sample_rate != rate:
        x = soxr.resample(x, sample_rate, rate, quality=RESAMPLE_QUALITY)
    parameter = next(encoder.parameters())
    spans = [(round(s * rate), min(round((s + window) * rate), len(x))) for s in window_starts(len(x) / rate,
                                                                                               window, hop)]
    times, embeddings = [], []
    for length, group in groupby(spans, key=lambda span: span[1] - span[0]):
        group = list(group)
        for i in range(0, len(group), batch_size):
            chunk = group[i:i + batch_size]
            clips = np.zeros((len(chunk), max(length, encoder.receptive_field)), dtype=np.float32)  # [B, N]
            for row, (a, b) in enumerate(chunk):
                clips[row, :b - a] = x[a:b]  # a window shorter than one frame's view is zero-padded
            states = encoder(torch.from_numpy(clips).to(parameter.device, parameter.dtype)).hidden_states
            pooled = torch.stack(states).float().mean(dim=2)  # [L, B, T, H] -> [L, B, H]
            embeddings.append(pooled.cpu().double().numpy())
            times.extend((a + b) / 2 / rate for a, b in chunk)
    return np.asarray(times), np.concatenate(embeddings, axis=1)


def checkerboard(kernel: int) -> np.ndarray:
    """Foote's Gaussian-tapered checkerboard kernel [kernel, kernel], sum |K| = 1.

    Positive where both windows lie on the same side of the centre (similar within a section),
    negative where they lie on opposite sides (dissimilar across a boundary); it sums to zero, so a
    uniform self-similarity gives zero novelty.
    """
    if kernel < 2 or kernel % 2:
        raise ValueError(f"kernel must be an even number of windows >= 2, got {kernel}")
    offsets = np.arange(kernel) - (kernel - 1) / 2  # -L+0.5 .. L-0.5 for L = kernel / 2
    taper = np.exp(-0.5 * (offsets / (kernel / 4)) ** 2)  # sigma = L / 2
    k = np.outer(np.sign(offsets), np.sign(offsets)) * np.outer(taper, taper)
    return k / np.abs(k).sum()


def novelty(embeddings: np.ndarray, kernel: int = 8) -> np.ndarray:
    """Foote novelty [W] of an embedding sequence [W, H]: entry k is the change between window
    k - 1 and window k, in -1..1.

    The embeddings are centred first: encoders give every window a large shared direction that
    would make all cosine similarities near 1. The cosine self-similarity matrix is zero-padded
    by kernel / 2 windows on each side, so the kernel can sit at every window.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    e = e - e.mean(axis=0)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    e = np.divide(e, norms, out=np.zeros_like(e), where=norms > 1e-8 * max(float(norms.max(initial=0)), 1e-30))
    k = checkerboard(kernel)
    half = kernel // 2
    similarity = np.pad(e @ e.T, half)  # [W + kernel, W + kernel]
    # window k's kernel covers padded rows k .. k + kernel - 1, i.e. windows k - half .. k + half - 1
    return np.array([np.sum(k * similarity[i:i + kernel, i:i + kernel]) for i in range(len(e))])


def boundaries(novelty: np.ndarray, times: np.ndarray, min_section: float = 8.0, delta: float = 0.3) -> list[float]:
    """Section boundaries in seconds: novelty peaks above an adaptive threshold, strongest first,
    each at least `min_section` from the others and from the first and last window centre.

    A peak is a local maximum of the novelty above median + delta * (max - median) (adapting to
    the track) and above MIN_NOVELTY (so a track that never changes has none). Peak k is dated
    midway between the centres of windows k - 1 and k.
    """
    n = np.asarray(novelty, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if len(n) != len(t):
        raise ValueError(f"novelty and times differ in length ({len(n)} vs {len(t)})")
    if len(n) < 3:
        return []
    median = float(np.median(n))
    threshold = max(median + delta * (float(n.max()) - median), MIN_NOVELTY)
    peaks = [k for k in range(1, len(n)) if n[k] > threshold and n[k] >= n[k - 1] and (k + 1 == len(n) or
                                                                                        n[k] >= n[k + 1])]
    chosen: list[float] = []
    for k in sorted(peaks, key=lambda k: -n[k]):
        time = float(t[k - 1] + t[k]) / 2
        if min(time - t[0], t[-1] - time) >= min_section and all(abs(time - c) >= min_section for c in chosen):
            chosen.append(time)
    return sorted(chosen)


def intensities(rms: np.ndarray, hop: float, edges: list[float]) -> list[float]:
    """Per section between consecutive `edges` (s), clip(mean RMS / track mean RMS, 0.6, 1.3),
    from an RMS envelope [T] sampled every `hop` seconds; 1.0 when there is one section or the
    track is silent."""
    rms = np.asarray(rms, dtype=np.float64)
    reference = float(rms.mean()) if len(rms) else 0.0
    if len(edges) <= 2 or reference <= 0:
        return [1.0] * (len(edges) - 1)
    out = []
    for start, end in zip(edges[:-1], edges[1:]):
        a = min(int(round(start / hop)), len(rms) - 1)
        part = rms[a:max(int(round(end / hop)), a + 1)]
        out.append(float(np.clip(part.mean() / reference, *INTENSITY_RANGE)))
    return out


def sections(audio: np.ndarray, sample_rate: int, encoder: Encoder, rms_envelope: np.ndarray, hop: float, *,
             window: float = 2.0, window_hop: float = 1.0, kernel: int = 8,
             min_section: float = 8.0) -> list[Section]:
    """The sections of one recording (see the module docstring), covering 0..its duration.

    Args:
        audio: waveform [N] or [C, N] at `sample_rate`.
        encoder: any melos encoder (see `window_embeddings`).
        rms_envelope: the track's RMS envelope [T] (e.g. `Analysis.rms`), frame k at k * hop s.
        window, window_hop: embedding windows (s); kernel: novelty kernel in windows (even);
        min_section: shortest section in seconds.
    """
    duration = np.shape(audio)[-1] / sample_rate
    times, embeddings = window_embeddings(audio, sample_rate, encoder, window, window_hop)
    edges = [0.0, *boundaries(novelty(embeddings, kernel), times, min_section), duration]
    return [Section(round(a, 3), round(b, 3), intensity=round(i, 3), density=round(float(np.clip(i, *DENSITY_RANGE)), 3))
            for a, b, i in zip(edges[:-1], edges[1:], intensities(rms_envelope, hop, edges))]
