"""Embedding collections of audio with any encoder: `embed`, its on-disk format, a HEAR module."""

from .pipeline import embed
from .store import Embeddings, IndexRow, RunSummary, read_index

__all__ = ["Embeddings", "IndexRow", "RunSummary", "embed", "read_index"]
