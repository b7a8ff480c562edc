"""Reading one mammogram file, DICOM or another image format: :func:`read_header` and :func:`read_image`.

* :func:`read_header` reads only the header (``stop_before_pixels``), for
  scanning folders of thousands of files.
* :func:`read_image` reads header and pixels and returns a
  :class:`~model.data.mammogram.Mammogram` whose pixels are the modality values,
  16-bit kept 16-bit, plus what the display needs (photometric interpretation,
  window presets, VOI function).

Every failure is a typed :class:`~model.errors.ImageReadError` with a one-line
reason; nothing else escapes (:mod:`model.data.read_failures`).

Before any pixel is decoded the declared size is checked against
:func:`~model.data.image_limits.max_image_pixels` (``BCIR_MAX_IMAGE_MEGAPIXELS``,
64 by default: twice the largest mammogram), so a small file that claims a huge
image is refused instead of filling the memory. The header read also checks,
without reading the pixels, that the file holds pixel data and that it is
complete (:mod:`model.data.dicom_header`), so a partial download is never listed
as an image. A DICOM file is opened once per read.
"""

from __future__ import annotations

from pathlib import Path

from model.data.dicom_header import dicom_header, open_dicom
from model.data.dicom_pixels import read_pixels
from model.data.itk_image import is_itk_image, read_itk_header, read_itk_image
from model.data.mammogram import ImageHeader, Mammogram
from model.data.read_failures import regular_file


def read_header(path: str | Path) -> ImageHeader:
    """Read one file's header only (checked as :func:`~model.data.dicom_header.dicom_header` says). Raises
    :class:`~model.errors.ImageReadError` subclasses."""
    path = Path(path)
    regular_file(path)
    if is_itk_image(path):
        return read_itk_header(path)
    with open_dicom(path) as f:
        return dicom_header(path, f)


def read_image(path: str | Path) -> Mammogram:
    """Read a whole image: header and decoded pixels (modality values).

    The header is read and checked first (:func:`read_header`: size limit, complete pixel data), so nothing
    is decoded, and no large pixel data is read, for a file that would be refused.
    """
    path = Path(path)
    regular_file(path)
    if is_itk_image(path):
        return read_itk_image(path)
    with open_dicom(path) as f:
        return read_pixels(path, f, dicom_header(path, f))
