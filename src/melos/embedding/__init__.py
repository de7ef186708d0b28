"""Embedding collections of audio with any encoder: `embed` (local) and `embed_ray` (Ray engine),
their on-disk formats, a HEAR module."""

from .pipeline import embed
from .ray_engine import embed_ray
from .store import Embeddings, IndexRow, RunSummary, read_index, read_parquet

__all__ = ["Embeddings", "IndexRow", "RunSummary", "embed", "embed_ray", "read_index", "read_parquet"]
