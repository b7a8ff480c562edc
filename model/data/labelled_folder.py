"""A site's own labelled data: images, masks and one small CSV.

The format (documented in the README)::

    site-data/
      labels.csv          image,mask,pathology,patient[,laterality,view,type]
      images/...          DICOM or PNG/TIFF/NRRD/... mammograms
      masks/...           binary masks of the same size as their image

One row per abnormality; paths are relative to the CSV and must stay inside
the folder opened. Several rows may name the same image (several
abnormalities) and may share one mask. A row with an empty ``mask`` and
pathology ``NORMAL`` marks a lesion-free image. Nothing is guessed: a row with
an empty or unknown pathology, a lesion without a mask, ``NORMAL`` with a mask
or a missing value keeps a ``problem`` (the CSV is read by
:mod:`model.data.csv_input`, which says why a whole CSV cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from model.data.csv_input import CsvPathError, column_name, resolve_inside, shown

LABEL_COLUMNS = ("image", "mask", "pathology", "patient")
PATHOLOGIES = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK", "NORMAL")


@dataclass(frozen=True)
class LabelRow:
    csv_name: str
    row: int
    image: Path | None  # None when the row names no usable image (``problem`` says why)
    mask: Path | None
    pathology: str  # MALIGNANT, BENIGN, BENIGN_WITHOUT_CALLBACK or NORMAL; anything else as written, with a problem
    patient: str
    laterality: str | None = None
    view: str | None = None
    type: str = "mass"
    problem: str | None = None  # why this row's truth cannot be used
    csv_path: str = ""

    @property
    def normal(self) -> bool:
        """A lesion-free image, as the CSV says without contradiction."""
        return self.pathology == "NORMAL" and self.mask is None and self.problem is None


def is_labels_csv(columns: set[str]) -> bool:
    """A complete labels header (names as compared, :func:`model.data.csv_input.column_name`)."""
    return {column_name(c) for c in LABEL_COLUMNS} <= {column_name(c) for c in columns}


def looks_like_labels(columns: set[str]) -> bool:
    """Three of the four label columns: a labels CSV, complete or not (a missing column is then reported)."""
    return len({column_name(c) for c in LABEL_COLUMNS} & {column_name(c) for c in columns}) >= 3


def read_labels_csv(path: Path, *, root: Path | None = None) -> list[LabelRow]:
    """Every row of a labels CSV; paths must resolve inside ``root`` (default: the CSV's folder).

    Raises :class:`model.data.csv_input.CsvError` for a CSV that cannot be read.
    """
    from model.data.cbis_ddsm import _table, known_pathology

    _, table = _table(path, ("labels",))
    root = Path(root) if root is not None else path.parent
    rows = []
    for row in table.rows:
        if row.problem:  # values shifted or missing: not even the image or the patient is known
            rows.append(LabelRow(path.name, row.number, None, None, "", "", problem=row.problem, csv_path=str(path)))
            continue
        problems = []
        image = mask = None
        if not row.get("image"):
            problems.append("image is empty")
        else:
            try:
                image = resolve_inside(root, path.parent, row.get("image"), what="image")
            except CsvPathError as exc:
                problems.append(exc.reason)
        if row.get("mask"):
            try:
                mask = resolve_inside(root, path.parent, row.get("mask"), what="mask")
            except CsvPathError as exc:
                problems.append(exc.reason)
        pathology, problem = known_pathology(row.get("pathology"), PATHOLOGIES)
        if problem:
            problems.append(problem)
        elif pathology == "NORMAL" and row.get("mask"):
            problems.append("pathology NORMAL with a mask")
        elif pathology != "NORMAL" and not row.get("mask"):
            problems.append(f"no mask for a {pathology} lesion")
        patient = row.get("patient")
        if not patient:
            problems.append("patient is empty")
        side = row.get("laterality").upper()
        laterality = {"L": "L", "R": "R", "LEFT": "L", "RIGHT": "R"}.get(side)
        if side and laterality is None:
            problems.append(f"laterality {shown(row.get('laterality'))} is not L or R")
        kind = row.get("type").lower()
        if kind and not kind.startswith(("mass", "calc")):
            problems.append(f"type {shown(row.get('type'))} is neither mass nor calcification")
        rows.append(LabelRow(
            csv_name=path.name, row=row.number, image=image, mask=mask, pathology=pathology, patient=patient,
            laterality=laterality, view=row.get("view").upper() or None,
            type="calcification" if kind.startswith("calc") else "mass",
            problem="; ".join(problems) or None, csv_path=str(path),
        ))
    return rows


def check_label_rows(rows: list[LabelRow]) -> tuple[list[LabelRow], list[tuple[str, str]]]:
    """(rows kept, notes) over the rows of every labels CSV of a folder.

    A row that repeats another (same image, mask and values) is left out with a
    note (csv path, reason). Rows that name the same image and mask with other
    values, or that call an image NORMAL while another row gives it a lesion,
    all keep a problem: which one is right is unknown.
    """
    kept: list[LabelRow] = []
    notes: list[tuple[str, str]] = []
    seen: dict[tuple, int] = {}
    for row in rows:
        key = (row.image, row.mask)
        if row.image is None or key not in seen:
            if row.image is not None:
                seen[key] = len(kept)
            kept.append(row)
            continue
        earlier = kept[seen[key]]
        if _values(earlier) == _values(row):
            notes.append((row.csv_path, f"row {row.row}: repeats {_where(earlier, row)}; left out"))
            continue
        kept[seen[key]] = _with_problem(earlier, f"{_where(row, earlier)} names the same image and mask with other values")
        kept.append(_with_problem(row, f"{_where(earlier, row)} names the same image and mask with other values"))
    normal = {row.image: row for row in kept if row.image is not None and row.pathology == "NORMAL" and row.mask is None}
    lesion = {row.image: row for row in kept if row.image is not None and row.mask is not None}
    for i, row in enumerate(kept):
        if row.image in normal and row.image in lesion:
            other = lesion[row.image] if row is normal[row.image] else normal[row.image]
            what = "gives this image a lesion" if row is normal[row.image] else "calls this image NORMAL"
            kept[i] = _with_problem(row, f"{_where(other, row)} {what}")
    return kept, notes


def _values(row: LabelRow) -> LabelRow:
    return replace(row, csv_name="", row=0, csv_path="", problem=None)


def _with_problem(row: LabelRow, problem: str) -> LabelRow:
    return replace(row, problem=f"{row.problem}; {problem}" if row.problem else problem)


def _where(other: LabelRow, row: LabelRow) -> str:
    return f"row {other.row}" if other.csv_path == row.csv_path else f"{other.csv_name} row {other.row}"
