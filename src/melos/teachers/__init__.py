"""Frozen teachers that make pre-training targets: EnCodec tokens, CQT, random-projection tokens."""
