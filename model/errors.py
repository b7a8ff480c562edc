"""Typed errors. ``str(error)`` is always one line a reader can act on."""

from __future__ import annotations

from pathlib import Path


class BcirError(Exception):
    """Base class of every error this package raises on purpose."""


class ImageReadError(BcirError):
    """A file could not be read as a 2D greyscale image.

    ``reason`` is a short phrase without the path ("truncated pixel data");
    ``str()`` adds the file name.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path.name}: {self.reason}")


class NotAnImageError(ImageReadError):
    """Neither DICOM nor an image format we read (a CSV, a text file, ...)."""


class TruncatedFileError(ImageReadError):
    """The file ends before its header or pixel data does."""


class NoPixelDataError(ImageReadError):
    """A DICOM object without an image (RT Plan, Structured Report, ...)."""


class UnsupportedImageError(ImageReadError):
    """An image, but not a single-frame greyscale one (multi-frame, colour, ...)."""


class DecodeError(ImageReadError):
    """Compressed pixel data that no installed decoder could decode."""


class ModelFileError(BcirError):
    """A weights file or model card that cannot be used."""
