"""Model merging in weight space: task vectors, task arithmetic, TIES, DARE, and analyses."""

from .executor import MergeSpec, merge
from .similarity import task_vector_similarity

__all__ = ["MergeSpec", "merge", "task_vector_similarity"]
