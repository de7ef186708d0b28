"""Query vectors: from audio (embedded as the index was), a `.npy`, or a melos embed `.safetensors`.

A query becomes one vector: the mean of its windows' embeddings at the index's layer, the same
pooling as a track-level index (a window-level index is then searched for the windows nearest
to the whole query; a query of one window, e.g. a clip shorter than the window, is that window).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..audio import AUDIO_EXTENSIONS
from ..data.sources import AudioSource
from ..embedding import embed
from ..embedding.store import SUFFIX, Embeddings
from ..models import list_presets, load_encoder
from .index import IndexInfo, model_source


def query_vector(query: str | Path, info: IndexInfo, model: str | None = None, device: str = "cpu",
                 start: float | None = None, end: float | None = None) -> np.ndarray:
    """The un-normalised query vector [H] for an index described by `info`.

    Args:
        query: an audio file, a `.npy` ([H] or [n, H], rows averaged) or a melos embed `.safetensors`.
        model: the encoder for audio queries; defaults to the one the index records (pass it when
            the checkpoint has moved since).
        start, end: seconds; only the windows whose middle lies in [start, end] are averaged
            (audio and .safetensors queries).
    """
    query = Path(query).expanduser()
    if not query.is_file():
        raise FileNotFoundError(f"{query}: query file not found")
    suffix = query.suffix.lower()
    if start is not None and end is not None and end <= start:
        raise ValueError(f"{query}: --end {end:g} is not after --start {start:g}")
    span = None if start is None and end is None else (start or 0.0, np.inf if end is None else end)
    if suffix == ".npy":
        if span is not None:
            raise ValueError(f"{query}: --start/--end need an audio or {SUFFIX} query (a .npy has no times)")
        x = np.load(query, allow_pickle=False)
        if x.ndim not in (1, 2):
            raise ValueError(f"{query}: expected a vector [H] or windows [n, H], got shape {list(x.shape)}")
        return x.reshape(-1, x.shape[-1]).astype(np.float64).mean(0)
    if suffix == SUFFIX:
        return _from_embeddings(Embeddings.load(query), info, str(query), model, span)
    if suffix not in AUDIO_EXTENSIONS:
        raise ValueError(f"{query}: not audio ({', '.join(sorted(AUDIO_EXTENSIONS))}), .npy or {SUFFIX}")
    return _from_audio(query, info, model, device, span)


def _in_span(x: torch.Tensor, starts: torch.Tensor, window: float, span, name: str) -> torch.Tensor:
    """The rows of window vectors `x` whose window middle lies in `span` (all when None)."""
    if span is None:
        return x
    middle = starts.double().numpy() + window / 2
    keep = (middle >= span[0]) & (middle <= span[1])
    if not keep.any():
        raise ValueError(f"{name}: no window has its middle in {span[0]:g}-{span[1]:g} s "
                         f"(windows start at {starts.min().item():g}-{starts.max().item():g} s, {window:g} s long)")
    return x[torch.from_numpy(keep)]


def _from_embeddings(emb: Embeddings, info: IndexInfo, name: str, model: str | None, span=None) -> np.ndarray:
    want = model_source(model or info.model)
    if "model" in emb.metadata and model_source(emb.metadata["model"]) != want:
        raise ValueError(f"{name}: embedded with model {emb.metadata['model']!r}, the index with {want!r}")
    layers = emb.layers.tolist()
    if info.layer not in layers:
        raise ValueError(f"{name}: layer {info.layer} (the index's) was not embedded (layers here: {layers})")
    x = emb.embeddings[layers.index(info.layer)]  # (n_windows, H), or frames with pool "none"
    if emb.metadata.get("pool") == "none":
        x = torch.stack([w.mean(0) for w in torch.split(x, emb.window_frames.tolist())])
    return _in_span(x, emb.window_starts, info.window, span, name).double().mean(0).numpy()


def _from_audio(path: Path, info: IndexInfo, model: str | None, device: str, span=None) -> np.ndarray:
    source = model or info.model
    if source.lower() in list_presets():
        raise ValueError(f"model {source!r} is a preset with random weights, so new audio cannot be embedded as "
                         f"the index was: query with an embedding (.npy/{SUFFIX}), or index a saved checkpoint")
    try:
        encoder = load_encoder(source, device=device)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"query model {source!r} cannot be loaded ({err}); pass --model with the "
                                f"checkpoint, or query with an embedding file") from None
    with tempfile.TemporaryDirectory() as tmp:
        summary = embed(encoder, [AudioSource(path, path.name)], tmp, layers=[info.layer], window=info.window,
                        hop=info.hop, pool="mean", device=device, progress=False)
        if not summary.ok:
            raise ValueError(next(iter(summary.failed.values())))
        emb = Embeddings.load(Path(tmp) / (path.name + SUFFIX))
    return _in_span(emb.embeddings[0], emb.window_starts, info.window, span, str(path)).double().mean(0).numpy()
