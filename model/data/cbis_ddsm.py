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

from dataclasses import dataclass, field, replace
from pathlib import Path

from model.data.csv_input import DELIMITERS, CsvError, CsvRow, column_name, header_names, read_table, read_text, shown

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
BENIGN_PATHOLOGIES = ("BENIGN", "BENIGN_WITHOUT_CALLBACK")
FULL_SERIES = "full mammogram images"
CROP_SERIES = "cropped images"
MASK_SERIES = "ROI mask images"

# Header names as compared (model.data.csv_input.column_name: case, blanks and "_" vs " " do not matter).
_DESCRIPTION_NAMES = frozenset(column_name(c) for c in MASS_COLUMNS + CALC_COLUMNS)
# Without these the truth of a row is unknown (the descriptors, side and view are not needed for it).
DESCRIPTION_REQUIRED = ("patient_id", "abnormality id", "abnormality type", "pathology", "image file path",
                        "cropped image file path", "ROI mask file path")
# A header with this many of the description names is a description CSV, complete or not.
_DESCRIPTION_MIN_NAMES = 7


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


def _kind_of(names: list[str]) -> str | None:
    """The kind a header row (names as compared) says, complete or not; None for a CSV that is not ours."""
    from model.data.labelled_folder import looks_like_labels

    columns = set(names)
    if looks_like_labels(columns):
        return "labels"
    if len(columns & _DESCRIPTION_NAMES) >= _DESCRIPTION_MIN_NAMES:
        mass = bool(columns & {"mass shape", "mass margins"})
        return "calc" if not mass and columns & {"calc type", "calc distribution"} else "mass"
    if {"series uid", "file location"} <= columns:
        return "metadata"
    if "seriesinstanceuid" in columns and columns & {"image path", "file path"}:
        return "dicom_info"
    return None


def _missing(kind: str, names: list[str]) -> list[str]:
    from model.data.labelled_folder import LABEL_COLUMNS

    required = LABEL_COLUMNS if kind == "labels" else DESCRIPTION_REQUIRED if kind in ("mass", "calc") else ()
    return [c for c in required if column_name(c) not in names]


_KIND_WORDS = {"mass": "a CBIS-DDSM mass description CSV", "calc": "a CBIS-DDSM calc description CSV",
               "labels": "a labels CSV (image,mask,pathology,patient)"}


def identify_csv(path: Path) -> tuple[str | None, str]:
    """(kind, delimiter) from the header row: 'mass', 'calc', 'labels', 'metadata', 'dicom_info', or None.

    None is a CSV that is not ours (passed over quietly). Raises CsvError for a
    file that is no readable CSV at all (empty, binary, not a regular file) and
    for one that looks like a description or labels CSV but lacks a column
    its truth depends on.
    """
    text = read_text(path, limit=64 * 1024)
    for delimiter in DELIMITERS:
        names = header_names(text, delimiter)
        kind = _kind_of(names)
        if kind is None:
            continue
        missing = _missing(kind, names)
        if missing:
            raise CsvError(path, f"looks like {_KIND_WORDS[kind]} but has no {', '.join(repr(m) for m in missing)} "
                                 f"column{'s' if len(missing) > 1 else ''}")
        return kind, delimiter
    return None, ","


def csv_kind(path: Path) -> str | None:
    """'mass', 'calc', 'metadata', 'dicom_info', 'labels' (a site's labelled folder) or None, from the header row.

    None also for a CSV that cannot be read (:func:`identify_csv` says why).
    """
    try:
        return identify_csv(path)[0]
    except CsvError:
        return None


def _table(path: Path, kinds: tuple[str, ...]):
    kind, delimiter = identify_csv(path)
    if kind not in kinds:
        raise CsvError(path, f"not {' or '.join(_KIND_WORDS.get(k, k) for k in kinds)}")
    return kind, read_table(path, delimiter)


def read_description_csv(path: Path) -> list[DescriptionRow]:
    """All rows of one mass or calc description CSV; a row whose truth cannot be used keeps a ``problem``.

    Raises CsvError for a CSV that cannot be read (or is no description CSV).
    """
    kind, table = _table(path, ("mass", "calc"))
    return [_description_row(path, kind, row) for row in table.rows]


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


def _with_problem(row, problem: str):
    return replace(row, problem=f"{row.problem}; {problem}" if row.problem else problem)


def find_duplicate_rows(rows: list[DescriptionRow]) -> tuple[list[DescriptionRow], list[tuple[str, str]]]:
    """(rows kept, notes): a row that repeats another (same image and abnormality id, same values, in any
    description CSV) is left out with a note (csv path, reason); rows with the same image and abnormality id
    but other values all keep a problem, since which one is right is unknown."""
    first: dict[tuple[str, int], int] = {}
    kept: list[DescriptionRow] = []
    notes: list[tuple[str, str]] = []
    for row in rows:
        if not row.image_path or not row.abnormality_id:
            kept.append(row)
            continue
        key = (row.image_path, row.abnormality_id)
        if key not in first:
            first[key] = len(kept)
            kept.append(row)
            continue
        earlier = kept[first[key]]
        if replace(earlier, csv_name="", row=0, csv_path="", problem=None) == replace(row, csv_name="", row=0, csv_path="", problem=None):
            notes.append((row.csv_path, f"row {row.row}: repeats {_where(earlier, row)}; left out"))
            continue
        kept[first[key]] = _with_problem(earlier, f"abnormality {row.abnormality_id} of this image is also "
                                                  f"{_where(row, earlier)}, with other values")
        kept.append(_with_problem(row, f"abnormality {row.abnormality_id} of this image is also "
                                       f"{_where(earlier, row)}, with other values"))
    return kept, notes


def _where(other, row) -> str:
    return f"row {other.row}" if other.csv_path == row.csv_path else f"{other.csv_name} row {other.row}"


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
    _, table = _table(path, ("metadata",))
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
    _, table = _table(path, ("dicom_info",))
    out = []
    for row in table.rows:
        uid = row.get("seriesinstanceuid")
        location = _norm_path(row.get("image path") or row.get("file path"))
        if not uid or not location:
            continue
        out.append(SeriesLocation(uid, Path(location), _optional_text(row.get("seriesdescription")),
                                  _optional_text(row.get("patientid"))))
    return out


@dataclass
class FolderCsvs:
    """What a folder's CSVs say (:func:`read_folder_csvs`)."""

    kinds: set[str] = field(default_factory=set)
    descriptions: list[tuple[Path, list[DescriptionRow]]] = field(default_factory=list)
    label_rows: list = field(default_factory=list)  # model.data.labelled_folder.LabelRow, each naming an image in the folder
    locations: list[tuple[Path, SeriesLocation]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason): unreadable CSVs, unusable rows
    # Patients whose truth is not all known: a row of theirs names no usable image. Their images that no row
    # names are not lesion-free.
    unsure_patients: set[str] = field(default_factory=set)
    # A CSV that is (or may be) a description or labels CSV could not be read: an image no row names is not
    # known to be lesion-free, whoever its patient.
    truth_incomplete: bool = False


def read_folder_csvs(csvs: list[Path], root: Path) -> FolderCsvs:
    """Read every CSV of a folder by its columns; never raises for a bad CSV or row (they go to ``skipped``).

    Unrelated CSVs are passed over quietly. Paths in a labels CSV must resolve
    inside ``root``; the description CSVs' paths are checked where they are
    mapped to files (:class:`model.data.study_index._Resolver`).
    """
    from model.data.labelled_folder import check_label_rows, read_labels_csv

    found = FolderCsvs()
    description_rows: list[DescriptionRow] = []
    for path in csvs:
        kind = None
        try:
            kind, _ = identify_csv(path)
            if kind in ("mass", "calc"):
                found.descriptions.append((path, []))
                for row in read_description_csv(path):
                    if row.image_path:
                        description_rows.append(row)
                        continue
                    found.skipped.append((str(path), f"row {row.row}: {row.problem}"))
                    if row.patient_id:
                        found.unsure_patients.add(row.patient_id)
                    else:
                        found.truth_incomplete = True
            elif kind == "labels":
                for row in read_labels_csv(path, root=root):
                    if row.image is None:
                        found.skipped.append((str(path), f"row {row.row}: {row.problem}"))
                        if row.patient:
                            found.unsure_patients.add(row.patient)
                        else:
                            found.truth_incomplete = True
                    else:
                        found.label_rows.append(row)
            elif kind == "metadata":
                found.locations += [(path.parent, loc) for loc in read_metadata_csv(path)]
            elif kind == "dicom_info":
                # Kaggle paths start with "CBIS-DDSM/jpeg/..."; resolve against the folder that holds them.
                base = root.parent if (root / "jpeg").is_dir() else root
                found.locations += [(base, loc) for loc in read_dicom_info_csv(path)]
        except CsvError as exc:
            found.skipped.append((str(path), f"unreadable CSV: {exc.reason}"))
            if kind not in ("metadata", "dicom_info"):
                found.truth_incomplete = True
            continue
        if kind:
            found.kinds.add(kind)
    description_rows, notes = find_duplicate_rows(description_rows)
    found.skipped += notes
    by_csv: dict[str, list[DescriptionRow]] = {}
    for row in description_rows:
        by_csv.setdefault(row.csv_path, []).append(row)
    found.descriptions = [(path, by_csv.get(str(path), [])) for path, _ in found.descriptions]
    found.label_rows, notes = check_label_rows(found.label_rows)
    found.skipped += notes
    return found
