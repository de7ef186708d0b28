"""The built-in quickstart: the CultureMERT experiment end to end on a laptop CPU."""

from .pipeline import quickstart

__all__ = ["quickstart"]
