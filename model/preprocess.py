"""Preprocessing shared by the viewer, inference and training.

Only the geometry the viewer needs lives here so far; the network's
preprocessing (breast region, equalization, resampling, with inverses) joins
it with the network.
"""

from __future__ import annotations

import numpy as np


def chest_wall_side(pixels: np.ndarray) -> str:
    """'left' or 'right': the image edge the chest wall is on.

    The breast is widest at the chest wall and fades to film background toward
    the nipple, so the brighter of the two outer column bands is the chest
    wall. Labels and border strips are thin and sit at the top or bottom, so
    the bands use the middle 60% of the rows and skip the outermost 2% of columns.
    """
    rows, cols = pixels.shape
    band = max(1, cols // 6)
    skip = cols // 50
    r0, r1 = int(rows * 0.2), int(rows * 0.8)
    left = float(np.median(pixels[r0:r1, skip : skip + band]))
    right = float(np.median(pixels[r0:r1, cols - skip - band : cols - skip]))
    return "left" if left >= right else "right"
