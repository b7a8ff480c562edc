"""Decoding a checked DICOM file's pixel data to modality values (16-bit kept 16-bit)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from model.data.dicom_header import dcmread, expected_bytes, missing_pixels_error, transfer_syntax
from model.data.mammogram import ImageHeader, Mammogram, narrowest
from model.data.read_failures import DECODE_FAILURES, Failures, named_failures, quiet_pydicom
from model.errors import DecodeError, TruncatedFileError, UnsupportedImageError


def read_pixels(path: Path, f: BinaryIO, header: ImageHeader) -> Mammogram:
    """The image of the open DICOM file ``f`` whose checked header is ``header``: the whole dataset is read from
    ``f`` and its pixels decoded. Raises :class:`~model.errors.ImageReadError` subclasses."""
    ds, _ = dcmread(path, f, stop_before_pixels=False)
    # pydicom reads a value it deferred (pixel data over 4 MB) from the dataset's buffer while that is open, else
    # it opens the file again by name: hand it this open file for the decode, and take it back after, so the
    # dataset kept for its VOI LUT tables is as one read by name.
    kept = ds.buffer
    if kept is None:
        ds.buffer = f
    try:
        with named_failures(path, DECODE_FAILURES), quiet_pydicom():
            return _decode(path, ds, header)
    finally:
        ds.buffer = kept


def _decode(path: Path, ds: Dataset, header: ImageHeader) -> Mammogram:
    if "PixelData" not in ds:
        raise missing_pixels_error(path, ds, False)
    syntax = transfer_syntax(ds, path)
    if (syntax is None or not syntax.is_compressed) and len(ds.PixelData) < expected_bytes(ds):
        raise TruncatedFileError(
            path, f"pixel data ends early ({len(ds.PixelData)} of {expected_bytes(ds)} bytes; truncated file)"
        )
    name = getattr(syntax, "name", "unknown transfer syntax")
    failures = Failures(lambda path, text: DecodeError(path, f"cannot decode pixel data ({name}): {text}"[:200]),
                        "not enough memory to decode this image")
    with named_failures(path, failures), quiet_pydicom():
        raw = ds.pixel_array
    del ds.PixelData  # keep the header for VOI LUT tables, not 30 MB of pixels
    if raw.ndim != 2:
        raise UnsupportedImageError(path, f"pixel array has shape {raw.shape}; expected one 2D greyscale frame")
    if raw.shape != header.shape:
        raise DecodeError(path, f"decoded {raw.shape[0]} x {raw.shape[1]} pixels; the header says {header.rows} x {header.columns}")
    pixels = _modality_values(raw, ds)
    del raw
    return Mammogram(header=header, pixels=pixels, dataset=ds)


def _modality_values(raw: np.ndarray, ds: Dataset) -> np.ndarray:
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if "ModalityLUTSequence" not in ds and (slope != 1 or intercept != 0) and raw.dtype.kind in "ui" and raw.size:
        # integer rescale in int32 when every value fits (pydicom's would make a float64 copy, 8 bytes a pixel)
        lo, hi = int(raw.min()), int(raw.max())
        ends = (lo * slope + intercept, hi * slope + intercept)
        if slope.is_integer() and intercept.is_integer() and -(2**31) <= min(ends) and max(ends) < 2**31:
            values = raw.astype(np.int32)
            values *= np.int32(slope)
            values += np.int32(intercept)
            return narrowest(values)
    if "ModalityLUTSequence" in ds or slope != 1 or intercept != 0:
        with quiet_pydicom():
            values = pydicom.pixels.apply_modality_lut(raw, ds)
        return narrowest(values)
    return narrowest(raw)
