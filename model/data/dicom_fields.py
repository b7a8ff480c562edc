"""The ImageHeader of a pydicom dataset: side, view, spacing, windows; refused unless it is one 2D greyscale image."""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from model.data.image_limits import check_image_size
from model.data.mammogram import ImageHeader, WindowPreset
from model.data.read_failures import FIELD_FAILURES, named_failures, quiet_pydicom
from model.errors import NoPixelDataError, UnsupportedImageError

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


def no_image_reason(ds: Dataset) -> str:
    """'DICOM RTPLAN object (RT Plan Storage) without an image', 'DICOMDIR (Media Storage Directory Storage), not an image'."""
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPClassUID")
    sop_name = getattr(sop, "name", None) if sop else None
    if "DirectoryRecordSequence" in ds or (sop_name and "Directory" in sop_name):
        return "DICOMDIR (media directory index), not an image"
    modality = _text(ds, "Modality")
    what = f"DICOM {modality} object" if modality else "DICOM object"
    return f"{what} ({sop_name}) without an image" if sop_name else f"{what} without an image"


def sop_class_name(ds: Dataset) -> str | None:
    """The name of the file's SOP class ('Digital Mammography X-Ray Image Storage - For Presentation'), if it names one."""
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPClassUID")
    name = getattr(sop, "name", None) if sop else None
    return name if name and name != str(sop) else None


def header_from_dataset(ds: Dataset, path: Path) -> ImageHeader:
    """Build an :class:`ImageHeader`; raises the typed errors for non-images and for images over the size limit."""
    with named_failures(path, FIELD_FAILURES), quiet_pydicom():
        return _header_fields(ds, path)


def _header_fields(ds: Dataset, path: Path) -> ImageHeader:
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if rows is None or columns is None:
        raise NoPixelDataError(path, no_image_reason(ds))
    rows, columns = int(rows), int(columns)
    check_image_size(path, rows, columns)
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
        rows=rows,
        columns=columns,
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
