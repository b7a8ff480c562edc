"""Reading mammograms from DICOM (pydicom) and from other image formats (SimpleITK).

Two entry points:

* :func:`read_header` reads only the header (``stop_before_pixels``), for
  scanning folders of thousands of files.
* :func:`read_image` reads header and pixels and returns a :class:`Mammogram`
  whose pixels are the modality values, 16-bit kept 16-bit, plus what the
  display needs (photometric interpretation, window presets, VOI function).

Every failure is a typed :class:`~model.errors.ImageReadError` with a one-line
reason; nothing else escapes.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from model.errors import (
    DecodeError,
    ImageReadError,
    NoPixelDataError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedImageError,
)

# Formats SimpleITK reads for us (the Kaggle JPEG copy of CBIS-DDSM, mask files, ...).
ITK_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".bmp")

# CBIS-DDSM subject names carry side and view: "Mass-Training_P_00001_LEFT_CC(_1)".
_NAME_SIDE_VIEW = re.compile(r"(?:^|[_\-/\\ ])(LEFT|RIGHT)_(CC|MLO|ML|LM|XCCL|XCCM|FB|SIO)(?:$|[_\-/\\. ])", re.I)
_NAME_PATIENT = re.compile(r"P_\d{5}")

# View codes (ViewCodeSequence) in both code systems that mammography headers use.
_VIEW_CODES = {
    "R-10242": "CC", "399162004": "CC",
    "R-10226": "MLO", "399368009": "MLO",
    "R-10224": "ML", "399260004": "ML",
    "R-10228": "LM", "399352003": "LM",
    "R-1024A": "XCCL", "399192003": "XCCL",
}
_KNOWN_VIEWS = {"CC", "MLO", "ML", "LM", "XCCL", "XCCM", "FB", "SIO", "LMO", "AT"}


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
    ``uint16`` whenever they fit, so 16-bit data stays 16-bit. For MONOCHROME1
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
        lo, hi = int(self.pixels.min()), int(self.pixels.max())
        if self.pixels.dtype == np.uint16:
            return (np.uint32(lo + hi) - self.pixels.astype(np.uint32)).astype(np.uint16)
        return (lo + hi) - self.pixels


# ---------------------------------------------------------------------------
# header fields


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    value = str(value).strip()
    return value or None


def name_side_view(name: str) -> tuple[str | None, str | None]:
    """Laterality and view from a CBIS-DDSM style name (``..._LEFT_CC``)."""
    match = _NAME_SIDE_VIEW.search(name)
    if not match:
        return None, None
    return match.group(1).upper()[0], match.group(2).upper()


def patient_from_name(name: str) -> str | None:
    """The CBIS-DDSM patient id (``P_00001``) inside a subject or path string."""
    match = _NAME_PATIENT.search(name)
    return match.group(0) if match else None


def _laterality(ds: Dataset, names: list[str]) -> str | None:
    for keyword in ("ImageLaterality", "Laterality"):
        value = (_text(ds, keyword) or "").upper()
        if value in ("L", "R"):
            return value
        if value in ("LEFT", "RIGHT"):
            return value[0]
    for name in names:
        side, _ = name_side_view(name)
        if side:
            return side
    return None


def _view(ds: Dataset, names: list[str]) -> str | None:
    value = (_text(ds, "ViewPosition") or "").upper()
    if value in _KNOWN_VIEWS:
        return value
    for item in ds.get("ViewCodeSequence", []) or []:
        code = str(item.get("CodeValue", "")).strip()
        if code in _VIEW_CODES:
            return _VIEW_CODES[code]
    # CBIS-DDSM stores the view in PatientOrientation ("CC" / "MLO").
    value = (_text(ds, "PatientOrientation") or "").upper()
    if value in _KNOWN_VIEWS:
        return value
    for name in names:
        _, view = name_side_view(name)
        if view:
            return view
    return None


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            if value is not None and len(value) == 2 and float(value[0]) > 0 and float(value[1]) > 0:
                return (float(value[0]), float(value[1]))
        except (TypeError, ValueError):
            continue
    return None


def _windows(ds: Dataset) -> tuple[WindowPreset, ...]:
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is None or widths is None:
        return ()
    as_list = lambda v: list(v) if isinstance(v, pydicom.multival.MultiValue) else [v]  # noqa: E731
    centers, widths = as_list(centers), as_list(widths)
    names = as_list(ds.get("WindowCenterWidthExplanation", "")) if "WindowCenterWidthExplanation" in ds else []
    function = (_text(ds, "VOILUTFunction") or "LINEAR").upper()
    presets = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if w <= 0:
            continue
        name = str(names[i]).strip() if i < len(names) else ""
        presets.append(WindowPreset(c, w, function, name or f"Preset {i + 1}"))
    return tuple(presets)


def _no_image_reason(ds: Dataset) -> str:
    """'DICOM RTPLAN object (RT Plan Storage) without an image', 'DICOMDIR (Media Storage Directory Storage), not an image'."""
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPClassUID")
    sop_name = getattr(sop, "name", None) if sop else None
    if "DirectoryRecordSequence" in ds or (sop_name and "Directory" in sop_name):
        return "DICOMDIR (media directory index), not an image"
    modality = _text(ds, "Modality")
    what = f"DICOM {modality} object" if modality else "DICOM object"
    return f"{what} ({sop_name}) without an image" if sop_name else f"{what} without an image"


def header_from_dataset(ds: Dataset, path: Path) -> ImageHeader:
    """Build an :class:`ImageHeader`; raises the typed errors for non-images."""
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if rows is None or columns is None:
        raise NoPixelDataError(path, _no_image_reason(ds))
    frames = ds.get("NumberOfFrames")
    try:
        frames = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        frames = 1
    if frames > 1:
        raise UnsupportedImageError(path, f"multi-frame image ({frames} frames); a mammogram is one 2D frame")
    photometric = (_text(ds, "PhotometricInterpretation") or "MONOCHROME2").upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImageError(path, f"colour image ({photometric}); only greyscale mammograms are read")
    patient = _text(ds, "PatientID")
    names = [n for n in (patient, _text(ds, "PatientName"), str(path)) if n]
    instance = ds.get("InstanceNumber")
    try:
        instance = int(instance) if instance not in (None, "") else None
    except (TypeError, ValueError):
        instance = None
    return ImageHeader(
        path=path,
        rows=int(rows),
        columns=int(columns),
        laterality=_laterality(ds, names),
        view=_view(ds, names),
        pixel_spacing_mm=_spacing(ds),
        photometric=photometric,
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16),
        patient_id=patient,
        modality=_text(ds, "Modality"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        series_description=_text(ds, "SeriesDescription"),
        instance_number=instance,
        windows=_windows(ds),
        has_voi_lut_table=bool(ds.get("VOILUTSequence")),
    )


# ---------------------------------------------------------------------------
# reading


def _looks_like_headerless_dicom(path: Path) -> bool:
    """Raw DICOM datasets without the 128-byte preamble start with group 0x0002 or 0x0008."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return len(head) == 4 and int.from_bytes(head[:2], "little") in (0x0002, 0x0008)


def _dcmread(path: Path, stop_before_pixels: bool) -> Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
            except InvalidDicomError:
                if not _looks_like_headerless_dicom(path):
                    raise
                return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except InvalidDicomError:
        raise NotAnImageError(path, "not a DICOM file") from None
    except (EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise ImageReadError(path, "file not found") from None
        if isinstance(exc, PermissionError):
            raise ImageReadError(path, "permission denied") from None
        raise TruncatedFileError(path, "file ends inside the DICOM header (truncated)") from None
    except Exception as exc:  # pydicom raises many kinds on corrupt headers
        raise ImageReadError(path, f"unreadable DICOM header ({type(exc).__name__}: {exc})"[:200]) from None


def is_itk_image(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in ITK_SUFFIXES)


def read_header(path: str | Path) -> ImageHeader:
    """Read one file's header only. Raises :class:`ImageReadError` subclasses."""
    path = Path(path)
    if is_itk_image(path):
        return _itk_header(path)
    ds = _dcmread(path, stop_before_pixels=True)
    if "Rows" not in ds and "PixelData" not in ds and "FloatPixelData" not in ds:
        raise NoPixelDataError(path, _no_image_reason(ds))
    return header_from_dataset(ds, path)


def _expected_bytes(ds: Dataset) -> int:
    bits = int(ds.get("BitsAllocated", 16))
    n = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    return (n * bits + 7) // 8


def read_image(path: str | Path) -> Mammogram:
    """Read a whole image: header and decoded pixels (modality values)."""
    path = Path(path)
    if is_itk_image(path):
        return _itk_read(path)
    ds = _dcmread(path, stop_before_pixels=False)
    if "PixelData" not in ds:
        if "Rows" in ds:
            raise NoPixelDataError(path, "DICOM header describes an image but holds no pixel data (truncated?)")
        raise NoPixelDataError(path, _no_image_reason(ds))
    header = header_from_dataset(ds, path)
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if (syntax is None or not syntax.is_compressed) and len(ds.PixelData) < _expected_bytes(ds):
        raise TruncatedFileError(
            path, f"pixel data ends early ({len(ds.PixelData)} of {_expected_bytes(ds)} bytes; truncated file)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = ds.pixel_array
    except Exception as exc:
        name = getattr(syntax, "name", "unknown transfer syntax")
        raise DecodeError(path, f"cannot decode pixel data ({name}): {exc}"[:200]) from None
    if raw.ndim != 2:
        raise UnsupportedImageError(path, f"pixel array has shape {raw.shape}; expected one 2D greyscale frame")
    pixels = _modality_values(raw, ds)
    del ds.PixelData  # keep the header for VOI LUT tables, not 30 MB of pixels
    return Mammogram(header=header, pixels=pixels, dataset=ds)


def _modality_values(raw: np.ndarray, ds: Dataset) -> np.ndarray:
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if "ModalityLUTSequence" in ds or slope != 1 or intercept != 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = pydicom.pixels.apply_modality_lut(raw, ds)
        return _narrowest(values)
    return _narrowest(raw)


def _narrowest(values: np.ndarray) -> np.ndarray:
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


# ---------------------------------------------------------------------------
# non-DICOM images through SimpleITK


def _itk_image(path: Path):
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return reader
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        if not path.exists():
            raise ImageReadError(path, "file not found") from None
        raise NotAnImageError(path, f"cannot read as an image ({message[:120]})") from None


def _itk_check(path: Path, size: tuple[int, ...], components: int) -> tuple[int, int]:
    if len(size) == 3 and size[2] > 1:
        raise UnsupportedImageError(path, f"3D or multi-frame image ({size[2]} slices)")
    if components not in (1, 3, 4):
        raise UnsupportedImageError(path, f"image with {components} components per pixel")
    return int(size[1]), int(size[0])  # rows, columns


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
        raise DecodeError(path, f"cannot decode image ({str(exc).strip().splitlines()[-1][:120]})") from None
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:  # colour components last
        channels = array[..., :3]
        if not (np.array_equal(channels[..., 0], channels[..., 1]) and np.array_equal(channels[..., 0], channels[..., 2])):
            raise UnsupportedImageError(path, "colour image; only greyscale mammograms are read")
        array = channels[..., 0]
    bits = 8 if array.dtype == np.uint8 else 16
    header = ImageHeader(**{**header.__dict__, "bits_stored": bits})
    return Mammogram(header=header, pixels=_narrowest(array), dataset=None)
