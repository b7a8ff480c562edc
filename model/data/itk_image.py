"""Images that are not DICOM (PNG, JPEG, TIFF, NRRD, NIfTI, MHA, BMP), read through SimpleITK."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from model.data.dicom_fields import name_side_view, patient_from_name
from model.data.image_limits import check_image_size
from model.data.mammogram import ImageHeader, Mammogram, narrowest
from model.data.read_failures import OTHER_IMAGE_FAILURES, named_failures, regular_file
from model.errors import DecodeError, ImageReadError, NotAnImageError, UnsupportedImageError

# Formats SimpleITK reads for us (the Kaggle JPEG copy of CBIS-DDSM, mask files, ...).
ITK_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".bmp")


def itk_reason(exc: RuntimeError, path: Path) -> str:
    """SimpleITK's last message line without the file's path or name (a name can carry a patient ID, and a batch's
    report counts reasons, which must not differ per file) and without the object addresses ITK prints."""
    lines = str(exc).strip().splitlines()
    text = lines[-1] if lines else "unreadable"
    for name in sorted({str(path), path.as_posix(), path.name}, key=len, reverse=True):
        text = text.replace(name, "the file")
    text = re.sub(r"\(0x[0-9a-fA-F]+\)|0x[0-9a-fA-F]+", "", text)
    return " ".join(text.split())[:120]


def is_itk_image(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in ITK_SUFFIXES)


def read_itk_header(path: Path) -> ImageHeader:
    """The header of an image SimpleITK reads; raises :class:`~model.errors.ImageReadError` subclasses only."""
    with named_failures(path, OTHER_IMAGE_FAILURES):
        return _itk_header(path)


def read_itk_image(path: Path) -> Mammogram:
    """An image SimpleITK reads, its size checked before any pixel is decoded; raises
    :class:`~model.errors.ImageReadError` subclasses only."""
    with named_failures(path, OTHER_IMAGE_FAILURES):
        return _itk_read(path)


def _itk_image(path: Path):
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader
    except RuntimeError as exc:
        regular_file(path)  # gone or replaced meanwhile: say so
        raise NotAnImageError(path, f"cannot read as an image ({itk_reason(exc, path)})") from None


def _itk_check(path: Path, size: tuple[int, ...], components: int) -> tuple[int, int]:
    if len(size) < 2:
        raise UnsupportedImageError(path, f"{len(size)}D image; a mammogram is one 2D image")
    if len(size) >= 3 and any(n > 1 for n in size[2:]):
        raise UnsupportedImageError(path, f"3D or multi-frame image ({size[2]} slices)")
    if components not in (1, 3, 4):
        raise UnsupportedImageError(path, f"image with {components} components per pixel")
    rows, columns = int(size[1]), int(size[0])
    check_image_size(path, rows, columns)  # from the file's header, before any pixel is decoded
    return rows, columns


def _itk_header(path: Path) -> ImageHeader:
    reader = _itk_image(path)
    rows, columns = _itk_check(path, reader.GetSize(), reader.GetNumberOfComponents())
    side, view = name_side_view(str(path))
    spacing = reader.GetSpacing()
    # PNG/JPEG/TIFF report spacing 1.0 when they know none; only trust real medical formats.
    known = path.name.lower().endswith((".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd"))
    return ImageHeader(
        path=path,
        rows=rows,
        columns=columns,
        laterality=side,
        view=view,
        pixel_spacing_mm=(float(spacing[1]), float(spacing[0])) if known else None,
        photometric="MONOCHROME2",
        bits_stored=16,
        patient_id=patient_from_name(str(path)),
        is_dicom=False,
    )


def _itk_read(path: Path) -> Mammogram:
    import SimpleITK as sitk

    header = _itk_header(path)
    try:
        array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    except RuntimeError as exc:
        raise DecodeError(path, f"cannot decode image ({itk_reason(exc, path)})") from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode this image") from None
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape[:2] != header.shape:
        raise DecodeError(path, f"decoded {array.shape[0]} x {array.shape[1]} pixels; the header says {header.rows} x {header.columns}")
    if array.ndim == 3:  # colour components last
        channels = array[..., :3]
        if not (np.array_equal(channels[..., 0], channels[..., 1]) and np.array_equal(channels[..., 0], channels[..., 2])):
            raise UnsupportedImageError(path, "colour image; only greyscale mammograms are read")
        array = channels[..., 0]
    bits = 8 if array.dtype == np.uint8 else 16
    header = ImageHeader(**{**header.__dict__, "bits_stored": bits})
    return Mammogram(header=header, pixels=narrowest(array), dataset=None)
