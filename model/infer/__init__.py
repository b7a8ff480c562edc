"""Running a model on images: the predictor with its tiling and result cache, and the overlays it writes."""
