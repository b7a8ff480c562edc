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

from dataclasses import dataclass
from pathlib import Path

from model.data.cbis_ddsm import known_pathology
from model.data.csv_input import CsvPathError, CsvTable, drop_repeated_rows, resolve_inside, shown, where, with_problem
from model.data.csv_kinds import read_csv_of_kind

# CBIS-DDSM's pathology words (model.data.cbis_ddsm.known_pathology checks them), and NORMAL for a lesion-free image.
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


def read_labels_csv(path: Path, *, root: Path | None = None) -> list[LabelRow]:
    """Every row of a labels CSV; paths must resolve inside ``root`` (default: the CSV's folder).

    Raises :class:`model.data.csv_input.CsvError` for a CSV that cannot be read.
    """
    _, table = read_csv_of_kind(path, ("labels",))
    return label_rows_of(table, Path(root) if root is not None else path.parent)


def label_rows_of(table: CsvTable, root: Path) -> list[LabelRow]:
    """The rows of a labels CSV already recognised and read; paths must resolve inside ``root``."""
    path = table.path
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
    kept, notes = drop_repeated_rows(
        rows, key=lambda row: (row.image, row.mask) if row.image is not None else None,
        conflict=lambda other, row: f"{where(other, row)} names the same image and mask with other values")
    normal = {row.image: row for row in kept if row.image is not None and row.pathology == "NORMAL" and row.mask is None}
    lesion = {row.image: row for row in kept if row.image is not None and row.mask is not None}
    for i, row in enumerate(kept):
        if row.image in normal and row.image in lesion:
            other = lesion[row.image] if row is normal[row.image] else normal[row.image]
            what = "gives this image a lesion" if row is normal[row.image] else "calls this image NORMAL"
            kept[i] = with_problem(row, f"{where(other, row)} {what}")
    return kept, notes

