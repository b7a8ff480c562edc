"""The B-Cir U-Net itself: the network, its weights with their model card, and the runtime fast paths."""
