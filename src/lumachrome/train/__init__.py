"""Training: configuration dataclasses, the supervised trainer, the loop, checkpoints and export."""
