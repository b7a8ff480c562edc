"""Lesion masks: loading ground truth, outlines for drawing, simple measurements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from model.data.dicom_io import read_image
from model.errors import DataError

if TYPE_CHECKING:
    from model.data.study_index import Abnormality, IndexedImage


def load_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A ground-truth mask file (binary DICOM or image) as bool.

    With ``shape`` given, a mask of another size raises DataError: CBIS-DDSM
    has masks that no resize can align with their image, so we never resize.
    """
    pixels = read_image(path).pixels
    lo, hi = float(pixels.min()), float(pixels.max())
    # halfway between the two values: robust to the ringing of lossy JPEG masks
    mask = pixels > (lo + hi) / 2 if hi > lo else np.zeros(pixels.shape, bool)
    if shape is not None and mask.shape != tuple(shape):
        raise DataError(f"mask {mask.shape[0]}x{mask.shape[1]} does not match image {shape[0]}x{shape[1]}")
    return mask


@dataclass(frozen=True)
class TruthLesion:
    """One ground-truth lesion of an image: its mask, or why it cannot be used."""

    abnormality: Abnormality
    mask: np.ndarray | None  # bool on the image's pixel grid; None when unusable
    reason: str = ""  # why it is unusable: the index's problem, 'no mask file', the read error, 'empty mask'


@dataclass(frozen=True)
class ImageTruth:
    """An image's ground truth as masks, in the order of its abnormalities."""

    known: bool  # False when no description covers the image: there is nothing to compare with
    lesions: list[TruthLesion]

    @property
    def usable(self) -> list[TruthLesion]:
        return [t for t in self.lesions if t.mask is not None]

    @property
    def unusable(self) -> list[TruthLesion]:
        return [t for t in self.lesions if t.mask is None]


def load_truth(image: IndexedImage, shape: tuple[int, int] | None = None, *, strict: bool = False) -> ImageTruth:
    """The ground-truth masks of ``image`` on a grid of ``shape`` (default: the image's rows and columns).

    A lesion with a problem in the index, without a mask file, whose mask cannot be read or has another size, or
    whose mask is empty is returned unusable with its reason. ``strict``: a mask that cannot be read (or has
    another size) raises its DataError instead (training leaves such an image out whole).
    """
    shape = tuple(shape) if shape is not None else (image.rows, image.columns)
    lesions = []
    for abnormality in image.abnormalities:
        if abnormality.problem or not abnormality.mask_path:
            lesions.append(TruthLesion(abnormality, None, abnormality.problem or "no mask file"))
            continue
        try:
            mask = load_mask(abnormality.mask_path, shape)
        except DataError as exc:  # an ImageReadError, or a mask of another size
            if strict:
                raise
            lesions.append(TruthLesion(abnormality, None, str(exc)))
            continue
        lesions.append(TruthLesion(abnormality, mask, "") if mask.any() else TruthLesion(abnormality, None, "empty mask"))
    return ImageTruth(known=image.gt_known or bool(image.abnormalities), lesions=lesions)


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
