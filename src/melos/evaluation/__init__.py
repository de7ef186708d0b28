"""Evaluation: probing tasks, feature caches, batched probes, metrics, reports."""
