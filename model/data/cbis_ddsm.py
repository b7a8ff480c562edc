"""The CBIS-DDSM description CSVs and the other CSVs a CBIS-DDSM copy carries.

Facts (see ``shared/spec/cbis-ddsm.md``): four description CSVs, two header
spellings (``breast_density`` vs ``breast density``), crop and mask columns
swapped in many rows, a trailing newline inside the last quoted path, ``NA``
and empty values, ``assessment``/``density``/``subtlety`` 0, several
abnormalities per image, one patient in two subsets. The NBIA retriever adds a
``metadata.csv``; the Kaggle JPEG copy adds ``dicom_info.csv``.

CSVs are recognised by their columns, never by their file names
(:mod:`model.data.csv_kinds`, which also holds their columns); the rows are read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.data.csv_input import CsvRow, CsvTable, drop_repeated_rows, shown, where
from model.data.csv_kinds import read_csv_of_kind

PATHOLOGIES = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK")
BENIGN_PATHOLOGIES = ("BENIGN", "BENIGN_WITHOUT_CALLBACK")
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
    abnormality_id: int  # 0 when the cell is not a number (then ``problem`` says so)
    abnormality_type: str  # "mass" / "calcification"
    pathology: str  # MALIGNANT, BENIGN, BENIGN_WITHOUT_CALLBACK; anything else as written, with a problem
    assessment: int | None  # BI-RADS as written (0 occurs)
    subtlety: int | None  # 1-5; 0 becomes None
    image_path: str  # "" when the cell is empty (then ``problem`` says so)
    crop_or_mask_paths: tuple[str, str]  # the two columns, order not trusted
    mass_shape: str | None = None
    mass_margins: str | None = None
    calc_type: str | None = None
    calc_distribution: str | None = None
    problem: str | None = None  # why this row's truth cannot be used (unknown pathology, missing values, ...)
    csv_path: str = ""

    @property
    def malignant(self) -> bool:
        return is_malignant(self.pathology)

    @property
    def image_subject(self) -> str:
        return self.image_path.split("/")[0]


def is_malignant(pathology: str) -> bool:
    """MALIGNANT is malignant; BENIGN and BENIGN_WITHOUT_CALLBACK are benign."""
    return pathology.strip().upper() == "MALIGNANT"


def is_benign(pathology: str) -> bool:
    """BENIGN and BENIGN_WITHOUT_CALLBACK; an unknown or empty pathology is neither malignant nor benign."""
    return pathology.strip().upper() in BENIGN_PATHOLOGIES


def known_pathology(value: str, allowed: tuple[str, ...] = PATHOLOGIES) -> tuple[str, str | None]:
    """(pathology, problem): the value in capitals when it is one of ``allowed``, else as written with the reason."""
    if not value:
        return "", "pathology is empty"
    upper = value.upper()
    if upper in allowed:
        return upper, None
    return value, f"pathology {shown(value)} is not {', '.join(allowed[:-1])} or {allowed[-1]}"


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _optional_text(value: str | None) -> str | None:
    value = _clean(value)
    return None if value in ("", "NA", "N/A", "None", "nan") else value


def _optional_int(value: str | None, *, zero_is_none: bool = False) -> int | None:
    value = _clean(value)
    try:
        number = int(float(value))
    except (ValueError, OverflowError):
        return None
    return None if (zero_is_none and number == 0) else number


def _norm_path(value: str | None) -> str:
    return _clean(value).replace("\\", "/").strip("/")


def read_description_csv(path: Path) -> list[DescriptionRow]:
    """All rows of one mass or calc description CSV; a row whose truth cannot be used keeps a ``problem``.

    Raises CsvError for a CSV that cannot be read (or is no description CSV).
    """
    kind, table = read_csv_of_kind(path, ("mass", "calc"))
    return description_rows_of(table, kind)


def description_rows_of(table: CsvTable, kind: str) -> list[DescriptionRow]:
    """The rows of a description CSV already recognised as ``kind`` ('mass' or 'calc') and read."""
    return [_description_row(table.path, kind, row) for row in table.rows]


def _description_row(path: Path, kind: str, row: CsvRow) -> DescriptionRow:
    if row.problem:  # values shifted or missing: not even the image or the patient is known
        return DescriptionRow(path.name, row.number, "", None, None, None, 0, "mass" if kind == "mass" else "calcification",
                              "", None, None, "", ("", ""), problem=row.problem, csv_path=str(path))
    problems = []
    patient = row.get("patient id")
    if not patient:
        problems.append("patient_id is empty")
    image_path = _norm_path(row.get("image file path"))
    if not image_path:
        problems.append("image file path is empty")
    pathology, problem = known_pathology(row.get("pathology"))
    if problem:
        problems.append(problem)
    written_type = row.get("abnormality type").lower()
    abnormality_type = "mass" if written_type.startswith("mass") else "calcification" if written_type.startswith("calc") else ""
    if not abnormality_type:
        problems.append(f"abnormality type {shown(row.get('abnormality type'))} is neither mass nor calcification"
                        if written_type else "abnormality type is empty")
        abnormality_type = "mass" if kind == "mass" else "calcification"
    abnormality_id = _optional_int(row.get("abnormality id"))
    if abnormality_id is None or abnormality_id < 1:
        problems.append(f"abnormality id {shown(row.get('abnormality id'))} is not a number from 1 up"
                        if row.get("abnormality id") else "abnormality id is empty")
        abnormality_id = 0
    roi = (_norm_path(row.get("cropped image file path")), _norm_path(row.get("roi mask file path")))
    if not any(roi):
        problems.append("no cropped image or ROI mask path")
    side = row.get("left or right breast").upper()
    return DescriptionRow(
        csv_name=path.name,
        row=row.number,
        patient_id=patient,
        breast_density=_optional_int(row.get("breast density"), zero_is_none=True),
        side=side[0] if side in ("LEFT", "RIGHT") else None,
        view=_optional_text(row.get("image view").upper()),
        abnormality_id=abnormality_id,
        abnormality_type=abnormality_type,
        pathology=pathology,
        assessment=_optional_int(row.get("assessment")),
        subtlety=_optional_int(row.get("subtlety"), zero_is_none=True),
        image_path=image_path,
        crop_or_mask_paths=roi,
        mass_shape=_optional_text(row.get("mass shape")),
        mass_margins=_optional_text(row.get("mass margins")),
        calc_type=_optional_text(row.get("calc type")),
        calc_distribution=_optional_text(row.get("calc distribution")),
        problem="; ".join(problems) or None,
        csv_path=str(path),
    )


def find_duplicate_rows(rows: list[DescriptionRow]) -> tuple[list[DescriptionRow], list[tuple[str, str]]]:
    """(rows kept, notes): a row that repeats another (same image and abnormality id, same values, in any
    description CSV) is left out with a note (csv path, reason); rows with the same image and abnormality id
    but other values all keep a problem, since which one is right is unknown."""
    return drop_repeated_rows(
        rows, key=lambda row: (row.image_path, row.abnormality_id) if row.image_path and row.abnormality_id else None,
        conflict=lambda other, row: f"abnormality {row.abnormality_id} of this image is also {where(other, row)}, "
                                    "with other values")


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
    _, table = read_csv_of_kind(path, ("metadata",))
    return metadata_locations_of(table)


def metadata_locations_of(table: CsvTable) -> list[SeriesLocation]:
    """The series locations of a metadata.csv already recognised and read."""
    out = []
    for row in table.rows:
        uid, location = row.get("series uid"), _norm_path(row.get("file location"))
        if not uid or not location:
            continue
        location = location[2:] if location.startswith("./") else location
        out.append(SeriesLocation(uid, Path(location), _optional_text(row.get("series description")),
                                  _optional_text(row.get("subject id"))))
    return out


def read_dicom_info_csv(path: Path) -> list[SeriesLocation]:
    """Kaggle's dicom_info.csv: one row per JPEG with its SeriesInstanceUID and description."""
    _, table = read_csv_of_kind(path, ("dicom_info",))
    return dicom_info_locations_of(table)


def dicom_info_locations_of(table: CsvTable) -> list[SeriesLocation]:
    """The series locations of a dicom_info.csv already recognised and read."""
    out = []
    for row in table.rows:
        uid = row.get("seriesinstanceuid")
        location = _norm_path(row.get("image path") or row.get("file path"))
        if not uid or not location:
            continue
        out.append(SeriesLocation(uid, Path(location), _optional_text(row.get("seriesdescription")),
                                  _optional_text(row.get("patientid"))))
    return out
