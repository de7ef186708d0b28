"""Music-language model: a melos encoder connected to a causal LM (`melos lm`)."""
