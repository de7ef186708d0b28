"""Training: stages, schedules, the trainer loop, checkpoints."""
