"""Similarity search over `melos embed` outputs: a LanceDB vector index of one layer, per track or
per window, with manifest columns to filter on, and queries from audio or embeddings."""

from .columns import ManifestColumns, read_columns
from .index import AddReport, Hit, IndexInfo, VectorIndex
from .query import query_vector
from .vectors import normalise, open_folder, read_batches

__all__ = ["AddReport", "Hit", "IndexInfo", "ManifestColumns", "VectorIndex", "normalise", "open_folder",
           "query_vector", "read_batches", "read_columns"]
