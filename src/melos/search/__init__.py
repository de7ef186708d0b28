"""Similarity search over `melos embed` outputs: one layer, per track or per window, in a LanceDB
table with manifest columns to filter on, searched exactly or through a FAISS inverted file of
PQ codes re-ranked exactly, with queries from audio or embeddings."""

from .columns import ManifestColumns, read_columns
from .index import AddReport, Hit, IndexInfo, VectorIndex
from .query import query_vector
from .vectors import default_layer, normalise, open_folder, read_batches

__all__ = ["AddReport", "Hit", "IndexInfo", "ManifestColumns", "VectorIndex", "default_layer", "normalise",
           "open_folder", "query_vector", "read_batches", "read_columns"]
