"""Datasets and inputs: listing audio files from folders and manifests."""
