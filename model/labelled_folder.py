"""A site's own labelled data: images, masks and one small CSV.

The format (documented in the README)::

    site-data/
      labels.csv          image,mask,pathology,patient[,laterality,view,type]
      images/...          DICOM or PNG/TIFF/NRRD/... mammograms
      masks/...           binary masks of the same size as their image

One row per abnormality; paths are relative to the CSV. Several rows may name
the same image (several abnormalities) and may share one mask. A row with an
empty ``mask`` and pathology ``NORMAL`` marks a lesion-free image.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

LABEL_COLUMNS = ("image", "mask", "pathology", "patient")


@dataclass(frozen=True)
class LabelRow:
    csv_name: str
    row: int
    image: Path
    mask: Path | None
    pathology: str  # MALIGNANT, BENIGN, BENIGN_WITHOUT_CALLBACK or NORMAL
    patient: str
    laterality: str | None = None
    view: str | None = None
    type: str = "mass"

    @property
    def normal(self) -> bool:
        return self.pathology == "NORMAL" or self.mask is None


def is_labels_csv(columns: set[str]) -> bool:
    return set(LABEL_COLUMNS) <= columns


def read_labels_csv(path: Path) -> list[LabelRow]:
    rows = []
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [c.strip().lower() for c in reader.fieldnames or []]
        for number, record in enumerate(reader, 1):
            cell = {k: (v or "").strip() for k, v in record.items() if k}
            if not cell.get("image") or not cell.get("patient"):
                continue
            side = cell.get("laterality", "").upper()[:1] or None
            kind = cell.get("type", "").lower()
            rows.append(LabelRow(
                csv_name=path.name, row=number, image=(path.parent / cell["image"]).resolve(),
                mask=(path.parent / cell["mask"]).resolve() if cell.get("mask") else None,
                pathology=(cell.get("pathology") or "NORMAL").upper(), patient=cell["patient"],
                laterality=side if side in ("L", "R") else None, view=(cell.get("view") or "").upper() or None,
                type="calcification" if kind.startswith("calc") else "mass",
            ))
    return rows
