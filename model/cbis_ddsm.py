"""The CBIS-DDSM description CSVs and the other CSVs a CBIS-DDSM copy carries.

Facts (see ``shared/spec/cbis-ddsm.md``): four description CSVs, two header
spellings (``breast_density`` vs ``breast density``), crop and mask columns
swapped in many rows, a trailing newline inside the last quoted path, ``NA``
and empty values, ``assessment``/``density``/``subtlety`` 0, several
abnormalities per image, one patient in two subsets. The NBIA retriever adds a
``metadata.csv``; the Kaggle JPEG copy adds ``dicom_info.csv``.

CSVs are recognised by their columns, never by their file names.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

MASS_COLUMNS = (
    "patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "mass shape", "mass margins", "assessment", "pathology", "subtlety",
    "image file path", "cropped image file path", "ROI mask file path",
)
CALC_COLUMNS = (
    "patient_id", "breast density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "calc type", "calc distribution", "assessment", "pathology", "subtlety",
    "image file path", "cropped image file path", "ROI mask file path",
)
METADATA_COLUMNS = (
    "Series UID", "Collection", "3rd Party Analysis", "Data Description URI", "Subject ID", "Study UID",
    "Study Description", "Study Date", "Series Description", "Manufacturer", "Modality", "SOP Class Name",
    "SOP Class UID", "Number of Images", "File Size", "File Location", "Download Timestamp",
)
PATHOLOGIES = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK")
FULL_SERIES = "full mammogram images"
CROP_SERIES = "cropped images"
MASK_SERIES = "ROI mask images"


@dataclass(frozen=True)
class DescriptionRow:
    """One abnormality, as one row of a description CSV (cells stripped, values as written)."""

    csv_name: str
    row: int  # data row number, 1 = the first row under the header
    patient_id: str
    breast_density: int | None  # 1-4; 0 and blanks become None
    side: str | None  # "L" / "R"
    view: str | None
    abnormality_id: int
    abnormality_type: str  # "mass" / "calcification"
    pathology: str  # as written: MALIGNANT, BENIGN, BENIGN_WITHOUT_CALLBACK
    assessment: int | None  # BI-RADS as written (0 occurs)
    subtlety: int | None  # 1-5; 0 becomes None
    image_path: str
    crop_or_mask_paths: tuple[str, str]  # the two columns, order not trusted
    mass_shape: str | None = None
    mass_margins: str | None = None
    calc_type: str | None = None
    calc_distribution: str | None = None

    @property
    def malignant(self) -> bool:
        return is_malignant(self.pathology)

    @property
    def image_subject(self) -> str:
        return self.image_path.split("/")[0]


def is_malignant(pathology: str) -> bool:
    """MALIGNANT is malignant; BENIGN and BENIGN_WITHOUT_CALLBACK are benign."""
    return pathology.strip().upper() == "MALIGNANT"


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _optional_text(value: str | None) -> str | None:
    value = _clean(value)
    return None if value in ("", "NA", "N/A", "None", "nan") else value


def _optional_int(value: str | None, *, zero_is_none: bool = False) -> int | None:
    value = _clean(value)
    try:
        number = int(float(value))
    except ValueError:
        return None
    return None if (zero_is_none and number == 0) else number


def _norm_path(value: str | None) -> str:
    return _clean(value).replace("\\", "/").strip("/")


def _read_header_row(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            return [c.strip() for c in next(csv.reader(f), [])]
    except OSError:
        return []


def csv_kind(path: Path) -> str | None:
    """'mass', 'calc', 'metadata', 'dicom_info', 'labels' (a site's labelled folder) or None, from the header row."""
    from model.labelled_folder import is_labels_csv

    header = _read_header_row(path)
    columns = set(header)
    if is_labels_csv({c.lower() for c in columns}):
        return "labels"
    if {"patient_id", "abnormality type", "image file path"} <= columns:
        return "mass" if "mass shape" in columns else "calc" if "calc type" in columns else None
    if {"Series UID", "File Location"} <= columns:
        return "metadata"
    if {"SeriesInstanceUID", "image_path"} <= columns or {"SeriesInstanceUID", "file_path"} <= columns:
        return "dicom_info"
    return None


def read_description_csv(path: Path) -> list[DescriptionRow]:
    """All rows of one mass or calc description CSV. Raises ValueError for other CSVs."""
    kind = csv_kind(path)
    if kind not in ("mass", "calc"):
        raise ValueError(f"{path.name} is not a CBIS-DDSM description CSV")
    rows = []
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
        for number, record in enumerate(reader, 1):
            cell = {k: _clean(v) for k, v in record.items() if k is not None}
            if not cell.get("patient_id") or not cell.get("image file path"):
                continue
            side = cell.get("left or right breast", "").upper()
            rows.append(
                DescriptionRow(
                    csv_name=path.name,
                    row=number,
                    patient_id=cell["patient_id"],
                    breast_density=_optional_int(cell.get("breast_density", cell.get("breast density")), zero_is_none=True),
                    side=side[0] if side in ("LEFT", "RIGHT") else None,
                    view=_optional_text(cell.get("image view", "").upper()),
                    abnormality_id=_optional_int(cell.get("abnormality id")) or 1,
                    abnormality_type="mass" if cell.get("abnormality type", "").lower().startswith("mass") else "calcification",
                    pathology=cell.get("pathology", "").upper(),
                    assessment=_optional_int(cell.get("assessment")),
                    subtlety=_optional_int(cell.get("subtlety"), zero_is_none=True),
                    image_path=_norm_path(cell["image file path"]),
                    crop_or_mask_paths=(_norm_path(cell.get("cropped image file path")), _norm_path(cell.get("ROI mask file path"))),
                    mass_shape=_optional_text(cell.get("mass shape")),
                    mass_margins=_optional_text(cell.get("mass margins")),
                    calc_type=_optional_text(cell.get("calc type")),
                    calc_distribution=_optional_text(cell.get("calc distribution")),
                )
            )
    return rows


def series_uid_of(csv_path: str) -> str | None:
    """The SeriesInstanceUID inside a CSV path ``Subject/StudyUID/SeriesUID/00000N.dcm``."""
    parts = [p for p in csv_path.split("/") if p]
    return parts[2] if len(parts) >= 4 else None


@dataclass(frozen=True)
class SeriesLocation:
    """Where a series lies on disk according to the retriever's metadata.csv or Kaggle's dicom_info.csv."""

    series_uid: str
    folder_or_file: Path
    description: str | None
    subject: str | None


def read_metadata_csv(path: Path) -> list[SeriesLocation]:
    """NBIA retriever's metadata.csv: Series UID → folder ("./CBIS-DDSM/<subject>/<date...>/<series>")."""
    out = []
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        for record in csv.DictReader(f):
            uid, location = _clean(record.get("Series UID")), _norm_path(record.get("File Location"))
            if not uid or not location:
                continue
            location = location[2:] if location.startswith("./") else location
            out.append(SeriesLocation(uid, Path(location), _optional_text(record.get("Series Description")), _optional_text(record.get("Subject ID"))))
    return out


def read_dicom_info_csv(path: Path) -> list[SeriesLocation]:
    """Kaggle's dicom_info.csv: one row per JPEG with its SeriesInstanceUID and description."""
    out = []
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        for record in csv.DictReader(f):
            uid = _clean(record.get("SeriesInstanceUID"))
            location = _norm_path(record.get("image_path") or record.get("file_path"))
            if not uid or not location:
                continue
            out.append(SeriesLocation(uid, Path(location), _optional_text(record.get("SeriesDescription")), _optional_text(record.get("PatientID"))))
    return out
