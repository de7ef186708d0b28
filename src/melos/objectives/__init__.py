"""Pre-training objectives: span masking, MERT losses, in-batch noise mixture."""
