"""Reading every CSV of a folder by its kind: the truth rows, the series locations, and what was skipped and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model.data.cbis_ddsm import (
    DescriptionRow, SeriesLocation, description_rows_of, dicom_info_locations_of, find_duplicate_rows, metadata_locations_of,
)
from model.data.csv_input import CsvError, read_table
from model.data.csv_kinds import identify_csv
from model.data.labelled_folder import LabelRow, check_label_rows, label_rows_of


@dataclass
class FolderCsvs:
    """What a folder's CSVs say (:func:`read_folder_csvs`)."""

    kinds: set[str] = field(default_factory=set)
    descriptions: list[tuple[Path, list[DescriptionRow]]] = field(default_factory=list)  # each row names an image
    label_rows: list[LabelRow] = field(default_factory=list)  # each naming an image in the folder
    locations: list[tuple[Path, SeriesLocation]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason): unreadable CSVs, unusable rows
    # Patients whose truth is not all known: a row of theirs names no usable image. Their images that no row
    # names are not lesion-free.
    unsure_patients: set[str] = field(default_factory=set)
    # (patient, laterality, view) of a row whose image was not found: that patient's unlisted image of that view
    # may be the one it meant (another path, a missing metadata.csv), so it is not lesion-free either.
    unsure_views: set[tuple[str, str, str]] = field(default_factory=set)
    # A CSV that is (or may be) a description or labels CSV could not be read, or a row that names no usable
    # image names no patient either: an image no row names is not known to be lesion-free, whoever its patient.
    truth_incomplete: bool = False

    def row_without_image(self, path: Path, row: int, problem: str | None, patient: str) -> tuple[str, str]:
        """A truth row that names no usable image (none, or one that cannot be used): the images it may have
        named are not lesion-free, its patient's or, with no patient, every image no row names. Returns the
        (path, reason) it is listed with; the caller lists it (``skipped`` here, the index's own list later)."""
        self.unsure(patient)
        return str(path), f"row {row}: {problem}"

    def unsure(self, patient: str, laterality: str | None = None, view: str | None = None) -> None:
        """A truth row of ``patient`` names an image that cannot be used or found: their images no row names are
        not lesion-free, only those of ``laterality`` and ``view`` when the row says both; with no patient, no image
        no row names is."""
        if patient and laterality and view:
            self.unsure_views.add((patient, laterality.upper(), view.upper()))
        elif patient:
            self.unsure_patients.add(patient)
        else:
            self.truth_incomplete = True

    def lesion_free(self, patient: str, laterality: str | None, view: str | None, known: set[str]) -> bool:
        """An image of ``patient`` that no truth row names is known to be lesion-free; ``known``: the result of
        :meth:`lesion_free_known`. An image whose side or view is unknown may be the one a missing row meant."""
        if patient not in known:
            return False
        if laterality and view:
            return (patient, laterality.upper(), view.upper()) not in self.unsure_views
        return not any(p == patient for p, _, _ in self.unsure_views)

    def lesion_free_known(self, patients: set[str]) -> set[str]:
        """Of the patients the truth rows cover, those whose images no row names are known to be lesion-free."""
        return set() if self.truth_incomplete else patients - self.unsure_patients


def read_folder_csvs(csvs: list[Path], root: Path) -> FolderCsvs:
    """Read every CSV of a folder by its columns; never raises for a bad CSV or row (they go to ``skipped``).

    Unrelated CSVs are passed over quietly. Paths in a labels CSV must resolve
    inside ``root``; the description CSVs' paths are checked where they are
    mapped to files (:class:`model.data.study_index._Resolver`).
    """
    found = FolderCsvs()
    description_csvs: list[Path] = []  # in the folder's order, with or without rows that could be read
    description_rows: list[DescriptionRow] = []
    for path in csvs:
        kind = None
        try:
            kind, delimiter = identify_csv(path)  # once: the readers are given the table it says how to read
            if kind in ("mass", "calc"):
                description_csvs.append(path)
                for row in description_rows_of(read_table(path, delimiter), kind):
                    if row.image_path:
                        description_rows.append(row)
                    else:
                        found.skipped.append(found.row_without_image(path, row.row, row.problem, row.patient_id))
            elif kind == "labels":
                for row in label_rows_of(read_table(path, delimiter), root):
                    if row.image is not None:
                        found.label_rows.append(row)
                    else:
                        found.skipped.append(found.row_without_image(path, row.row, row.problem, row.patient))
            elif kind == "metadata":
                found.locations += [(path.parent, loc) for loc in metadata_locations_of(read_table(path, delimiter))]
            elif kind == "dicom_info":
                # Kaggle paths start with "CBIS-DDSM/jpeg/..."; resolve against the folder that holds them.
                base = root.parent if (root / "jpeg").is_dir() else root
                found.locations += [(base, loc) for loc in dicom_info_locations_of(read_table(path, delimiter))]
        except CsvError as exc:
            found.skipped.append((str(path), f"unreadable CSV: {exc.reason}"))
            if kind not in ("metadata", "dicom_info"):
                found.truth_incomplete = True
            continue
        if kind:
            found.kinds.add(kind)
    description_rows, notes = find_duplicate_rows(description_rows)
    found.skipped += notes
    by_csv: dict[str, list[DescriptionRow]] = {str(path): [] for path in description_csvs}
    for row in description_rows:
        by_csv[row.csv_path].append(row)
    found.descriptions = [(path, by_csv[str(path)]) for path in description_csvs]
    found.label_rows, notes = check_label_rows(found.label_rows)
    found.skipped += notes
    return found
