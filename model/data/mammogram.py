"""What an image read returns: the ImageHeader with its WindowPresets, and the decoded Mammogram."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset


@dataclass(frozen=True)
class WindowPreset:
    """One VOI window from the header (or one the user made)."""

    center: float
    width: float
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID (VOILUTFunction)
    name: str = ""


@dataclass(frozen=True)
class ImageHeader:
    """What the app needs to know about one image file before reading its pixels."""

    path: Path
    rows: int
    columns: int
    laterality: str | None  # "L", "R" or None
    view: str | None  # "CC", "MLO", ... or None
    pixel_spacing_mm: tuple[float, float] | None  # (row, column) spacing; None = unknown (CBIS-DDSM)
    photometric: str = "MONOCHROME2"
    bits_stored: int = 16
    patient_id: str | None = None
    modality: str | None = None
    series_uid: str | None = None
    study_uid: str | None = None
    sop_instance_uid: str | None = None
    series_description: str | None = None
    instance_number: int | None = None
    windows: tuple[WindowPreset, ...] = ()
    has_voi_lut_table: bool = False
    is_dicom: bool = True

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.columns)


@dataclass
class Mammogram:
    """A decoded 2D greyscale image with its header.

    ``pixels`` holds modality values (Modality LUT / rescale applied), as
    ``uint16`` whenever they fit (:func:`narrowest`), so 16-bit data stays 16-bit. For MONOCHROME1
    images ``pixels`` are left as stored and ``header.photometric`` says to
    invert for display; :meth:`monochrome2` gives the bright-is-dense array the
    network and the overlays use.
    """

    header: ImageHeader
    pixels: np.ndarray
    dataset: Dataset | None = field(default=None, repr=False)  # header only, for VOI LUT tables

    @property
    def inverted(self) -> bool:
        return self.header.photometric == "MONOCHROME1"

    def monochrome2(self) -> np.ndarray:
        """Pixels with dense tissue bright, whatever the stored photometric."""
        if not self.inverted:
            return self.pixels
        lo, hi = self.pixels.min(), self.pixels.max()
        # hi - (p - lo), in the pixels' own dtype: one array, no wider copy. Integer intermediates may wrap,
        # but the result lies in [lo, hi], so modular arithmetic gives it exactly.
        out = np.subtract(self.pixels, lo)
        np.subtract(hi, out, out=out)
        return out


def narrowest(values: np.ndarray) -> np.ndarray:
    """uint16 when the values are integers in 0..65535 (16-bit kept 16-bit), else int32/float32."""
    if values.dtype == np.uint16:
        return np.ascontiguousarray(values)
    if values.dtype.kind in "ui" or (values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0)):
        lo, hi = (values.min(), values.max()) if values.size else (0, 0)
        if lo >= 0 and hi <= 65535:
            return np.ascontiguousarray(values, dtype=np.uint16)
        if lo >= -(2**31) and hi < 2**31:
            return np.ascontiguousarray(values, dtype=np.int32)
    return np.ascontiguousarray(values, dtype=np.float32)
