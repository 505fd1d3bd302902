"""Training: state, pure train/eval steps, the loop and checkpoints."""
