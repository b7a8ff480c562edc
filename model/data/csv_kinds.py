"""Which kind of CSV a file is, from its header row: each kind's columns and the rule that recognises it.

The kinds: CBIS-DDSM's mass and calc description CSVs, the NBIA retriever's
``metadata.csv``, Kaggle's ``dicom_info.csv`` and a site's labels CSV
(:mod:`model.data.labelled_folder`). CSVs are recognised by their columns, never
by their file names; the readers (:mod:`model.data.cbis_ddsm`,
:mod:`model.data.labelled_folder`) read the rows of the kind they are given.
"""

from __future__ import annotations

from pathlib import Path

from model.data.csv_input import DELIMITERS, HEADER_BYTES, CsvError, CsvTable, column_name, header_names, read_table, read_text

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
LABEL_COLUMNS = ("image", "mask", "pathology", "patient")

# Header names as compared (model.data.csv_input.column_name: case, blanks and "_" vs " " do not matter).
_DESCRIPTION_NAMES = frozenset(column_name(c) for c in MASS_COLUMNS + CALC_COLUMNS)
_LABEL_NAMES = frozenset(column_name(c) for c in LABEL_COLUMNS)
# Without these the truth of a row is unknown (the descriptors, side and view are not needed for it).
DESCRIPTION_REQUIRED = ("patient_id", "abnormality id", "abnormality type", "pathology", "image file path",
                        "cropped image file path", "ROI mask file path")
# A header with this many of the description names is a description CSV, complete or not.
_DESCRIPTION_MIN_NAMES = 7
# A header with this many of the label columns is a labels CSV, complete or not (a missing column is then reported).
_LABEL_MIN_NAMES = 3

_KIND_WORDS = {"mass": "a CBIS-DDSM mass description CSV", "calc": "a CBIS-DDSM calc description CSV",
               "labels": "a labels CSV (image,mask,pathology,patient)"}


def _kind_of(names: list[str]) -> str | None:
    """The kind a header row (names as compared) says, complete or not; None for a CSV that is not ours."""
    columns = set(names)
    if len(columns & _LABEL_NAMES) >= _LABEL_MIN_NAMES:
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
    required = LABEL_COLUMNS if kind == "labels" else DESCRIPTION_REQUIRED if kind in ("mass", "calc") else ()
    return [c for c in required if column_name(c) not in names]


def identify_csv(path: Path) -> tuple[str | None, str]:
    """(kind, delimiter) from the header row: 'mass', 'calc', 'labels', 'metadata', 'dicom_info', or None.

    None is a CSV that is not ours (passed over quietly). Raises CsvError for a
    file that is no readable CSV at all (empty, binary, not a regular file) and
    for one that looks like a description or labels CSV but lacks a column
    its truth depends on.
    """
    text = read_text(path, limit=HEADER_BYTES)
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


def read_csv_of_kind(path: Path, kinds: tuple[str, ...]) -> tuple[str, CsvTable]:
    """(kind, table) of a CSV that is one of ``kinds``. Raises CsvError for one that is not, or cannot be read."""
    kind, delimiter = identify_csv(path)
    if kind not in kinds:
        raise CsvError(path, f"not {' or '.join(_KIND_WORDS.get(k, k) for k in kinds)}")
    return kind, read_table(path, delimiter)
