"""Training: configuration, the training data and augmentation, and the loop with its checkpoints and distributed runs."""
