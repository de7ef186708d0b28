"""Reusable neural-network layers: conv front end, positional conv, Transformer layers."""
