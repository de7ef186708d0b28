"""Reusable neural-network layers: conv and mel front ends, positional conv, Transformer and efficient blocks."""
