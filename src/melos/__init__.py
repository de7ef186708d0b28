"""melos: music audio foundation models."""
