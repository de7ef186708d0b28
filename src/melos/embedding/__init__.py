"""Embedding collections of audio with any encoder: `embed`, its on-disk format, a HEAR module."""

from .pipeline import EmbedSummary, embed
from .store import Embeddings, IndexRow, read_index

__all__ = ["EmbedSummary", "Embeddings", "IndexRow", "embed", "read_index"]
