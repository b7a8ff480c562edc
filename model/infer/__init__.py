"""Running a model on images: the predictor, its tiling and result cache, overlays, and the one truth comparison."""
