"""Lesion masks: loading ground truth, outlines for drawing, simple measurements."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from model.data.dicom_io import read_image


def load_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ground-truth mask file (binary DICOM or image) as bool.

    With ``shape`` given, a mask of another size raises ValueError: CBIS-DDSM
    has masks that no resize can align with their image, so we never resize.
    """
    pixels = read_image(path).pixels
    lo, hi = float(pixels.min()), float(pixels.max())
    # halfway between the two values: robust to the ringing of lossy JPEG masks
    mask = pixels > (lo + hi) / 2 if hi > lo else np.zeros(pixels.shape, bool)
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(f"mask {mask.shape[0]}x{mask.shape[1]} does not match image {shape[0]}x{shape[1]}")
    return mask


def mask_outlines(mask: np.ndarray, *, simplify_px: float = 1.0) -> list[np.ndarray]:
    """Outer outlines of every region of a mask, each an (N, 2) float array of (x, y) pixel centres, closed."""
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outlines = []
    for contour in contours:
        if simplify_px > 0 and len(contour) > 8:
            contour = cv2.approxPolyDP(contour, simplify_px, True)
        points = contour.reshape(-1, 2).astype(np.float64)
        if len(points) >= 2:
            outlines.append(np.vstack([points, points[:1]]))
    return outlines
