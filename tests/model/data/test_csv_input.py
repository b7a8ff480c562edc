"""Broken and hostile CSVs: paths that leave the dataset folder, labels that must never be guessed, CSVs that are
either read or listed as unreadable with the reason (issue 11, items 4 and 5)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.data import cbis_ddsm
from model.data import csv_input
from model.data import csv_kinds
from model.data import study_index
from model.data.csv_kinds import MASS_COLUMNS
from model.data.csv_input import CsvError, CsvPathError, resolve_inside
from model.train.dataset_summary import summarize_index
from model.data.labelled_folder import LabelRow, check_label_rows, read_labels_csv
from model.data.study_index import build_index
from model.data.selection import select_images
from tests.conftest import make_dicom
from tests.model.data.test_cbis_index import SHAPE, Tree, _image, _mask, _mass_row

MASS_CSV = "mass_case_description_train_set.csv"


def _one_patient(root: Path, **row_values) -> tuple[Tree, dict]:
    """One CBIS-DDSM patient (LEFT CC with a mass, crop and mask in one series, and a clean RIGHT CC); the row is
    returned unwritten so a test can break it."""
    t = Tree(root, "uid")
    img = t.full("Mass-Training_P_00001_LEFT_CC", "L", "CC", _image(1))
    crop, mask = t.roi("Mass-Training_P_00001_LEFT_CC_1", _image(2)[:12, :10], _mask(), same_series=True)
    t.full("Mass-Training_P_00001_RIGHT_CC", "R", "CC", _image(3))
    row = _mass_row("P_00001", "LEFT", "CC", 1, img, crop, mask)
    row.update(row_values)
    return t, row


def _write_rows(path: Path, rows: list[dict], columns=MASS_COLUMNS, delimiter: str = ",") -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])
    return path


def _by_view(index) -> dict:
    return {(i.patient_id, i.laterality, i.view): i for i in index.images}


def _reasons(index) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in index.skipped:
        out.setdefault(Path(s.path).name, []).append(s.reason)
    return out


def _record_reads(monkeypatch) -> list[Path]:
    """Every path the index opens as an image (headers and ROI pixels)."""
    opened: list[Path] = []
    real_header, real_image = study_index.read_header, study_index.read_image

    def header(path, *a, **k):
        opened.append(Path(path))
        return real_header(path, *a, **k)

    def image(path, *a, **k):
        opened.append(Path(path))
        return real_image(path, *a, **k)

    monkeypatch.setattr(study_index, "read_header", header)
    monkeypatch.setattr(study_index, "read_image", image)
    return opened


# ---------------------------------------------------------------------------
# item 4: paths from a CSV stay inside the dataset folder


def test_resolve_inside_is_the_one_rule(tmp_path):
    root = tmp_path / "data"
    (root / "csv").mkdir(parents=True)
    assert resolve_inside(root, root / "csv", "../images/a.png") == root / "images" / "a.png"  # up, but inside
    assert resolve_inside(root, root, "images\\b.png") == root / "images" / "b.png"
    for ref in ("../../secret.png", "../../outside/secret_mask.png", "../../../../../etc/passwd", "/etc/passwd",
                "images/../../../x.png", "a\0b"):
        with pytest.raises(CsvPathError) as info:
            resolve_inside(root, root / "csv", ref, what="mask")
        assert "mask" in str(info.value) and "\n" not in str(info.value)


def test_roi_path_outside_the_folder_is_a_problem_not_ground_truth(tmp_path, monkeypatch):
    """Before: ../../outside/secret_mask.png was read and accepted as the lesion's ground truth."""
    root = tmp_path / "site" / "data"
    (tmp_path / "outside").mkdir()
    secret = tmp_path / "outside" / "secret_mask.png"
    cv2.imwrite(str(secret), _mask())  # binary and of the image's size: it would pass as the mask
    t, row = _one_patient(root)
    row["ROI mask file path"] = "../../outside/secret_mask.png"
    _write_rows(root / MASS_CSV, [row])
    opened = _record_reads(monkeypatch)
    index = build_index(root, workers=1)
    (a,) = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert a.mask_path is None or Path(a.mask_path).is_relative_to(root)
    assert a.problem and "'../../outside/secret_mask.png' leads outside the dataset folder" in a.problem
    assert "ROI mask file path" in a.problem
    assert all(p.resolve().is_relative_to(root.resolve()) for p in opened), [p for p in opened if "outside" in str(p)]
    usable, _ = select_images(index, ("CC",))
    assert [i.laterality for i in usable] == ["R"]  # the lesion's image is left out, the clean view stays


def test_etc_passwd_is_never_opened(tmp_path, monkeypatch):
    """Before: ../../../../../etc/passwd in a ROI column was opened (and read as an image)."""
    root = tmp_path / "data"
    t, row = _one_patient(root)
    row["ROI mask file path"] = "../../../../../etc/passwd"
    second = dict(row, **{"abnormality id": "2", "image file path": "../../../../../etc/passwd"})
    _write_rows(root / MASS_CSV, [row, second])
    opened = _record_reads(monkeypatch)
    index = build_index(root, workers=1)
    assert not [p for p in opened if not p.resolve().is_relative_to(root.resolve())]
    (a,) = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert "'../../../../../etc/passwd' leads outside the dataset folder" in a.problem
    assert "row 2: image file path '../../../../../etc/passwd' leads outside the dataset folder" in _reasons(index)[MASS_CSV]
    # P_00001's row 2 names no usable image: their unlisted right CC is not called lesion-free
    assert not _by_view(index)[("P_00001", "R", "CC")].gt_known


@pytest.mark.parametrize("image_path", ["", "../../../../../etc/passwd"])
def test_a_row_with_no_patient_and_no_usable_image_leaves_the_truth_incomplete(tmp_path, image_path):
    """A row that names no usable image and no patient may be about any image of the folder: none is called
    lesion-free, whether its image path is empty or leads outside the folder. Before: a path outside the folder
    marked the patient "" unsure, which is nobody, and the clean view was shown as a known negative."""
    t, row = _one_patient(tmp_path)
    unknown = dict(row, **{"patient_id": "", "abnormality id": "2", "image file path": image_path})
    _write_rows(tmp_path / MASS_CSV, [row, unknown])
    index = build_index(tmp_path, workers=1)
    assert any(r.startswith("row 2: ") for r in _reasons(index)[MASS_CSV])
    assert _by_view(index)[("P_00001", "L", "CC")].abnormalities  # the named lesion is still there
    assert not _by_view(index)[("P_00001", "R", "CC")].gt_known


def test_a_row_whose_image_is_not_found_leaves_that_view_unsure(tmp_path):
    """A row whose image path names no file on disk (moved, renamed, mapped by a metadata.csv that is missing) may be
    about its patient's unlisted view of the side and view it names: that one is not called lesion-free; the other
    side's clean view still is. Before: the lesion's own view, present under another path, was indexed as a known
    negative with no lesion."""
    t, row = _one_patient(tmp_path)
    row["image file path"] = "Mass-Training_P_00001_LEFT_CC/1.2.3/1.2.4/000000.dcm"
    _write_rows(tmp_path / MASS_CSV, [row])
    index = build_index(tmp_path, workers=1)
    assert any("but not found on disk" in s.reason for s in index.skipped)
    views = _by_view(index)
    assert {("P_00001", "L", "CC"), ("P_00001", "R", "CC")} <= set(views)
    assert not views[("P_00001", "L", "CC")].gt_known  # neither trains nor is scored as a negative
    assert views[("P_00001", "R", "CC")].gt_known and not views[("P_00001", "R", "CC")].abnormalities
    assert [i.laterality for i in select_images(index, ("CC",))[0]] == ["R"]


def test_labels_csv_paths_outside_the_folder(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    cv2.imwrite(str(site / "images" / "a.png"), _image(1))
    cv2.imwrite(str(tmp_path / "outside_mask.png"), _mask())
    cv2.imwrite(str(tmp_path / "outside.png"), _image(2))
    (site / "labels.csv").write_text(
        "image,mask,pathology,patient,laterality,view\n"
        "images/a.png,../outside_mask.png,MALIGNANT,X1,L,CC\n"
        "../outside.png,,NORMAL,X2,R,CC\n"
    )
    opened = _record_reads(monkeypatch)
    index = build_index(site, workers=1)
    (image,) = index.images
    (a,) = image.abnormalities
    assert a.mask_path is None and "mask '../outside_mask.png' leads outside the dataset folder" in a.problem
    assert "row 2: image '../outside.png' leads outside the dataset folder" in _reasons(index)["labels.csv"]
    assert all(p.resolve().is_relative_to(site.resolve()) for p in opened)


# ---------------------------------------------------------------------------
# item 5: labels are never guessed


def test_mass_csv_without_pathology_column_is_unreadable_not_benign(tmp_path):
    """Before: every mass became benign."""
    t, row = _one_patient(tmp_path)
    _write_rows(tmp_path / MASS_CSV, [row], columns=tuple(c for c in MASS_COLUMNS if c != "pathology"))
    index = build_index(tmp_path, workers=1)
    (reason,) = _reasons(index)[MASS_CSV]
    assert reason == ("unreadable CSV: looks like a CBIS-DDSM mass description CSV but has no 'pathology' column")
    assert not any(i.abnormalities for i in index.images)
    assert not any(i.gt_known for i in index.images)  # no truth is claimed, not even "lesion-free"


@pytest.mark.parametrize("pathology", ["maybe cancer", "MALIG\0NANT", "", "NA"])
def test_unknown_or_empty_pathology_is_a_problem_row(tmp_path, pathology):
    """Before: 'maybe cancer' and 'MALIG\\0NANT' were accepted as benign."""
    t, row = _one_patient(tmp_path, pathology=pathology)
    good = _mass_row("P_00002", "LEFT", "CC", 1, t.full("Mass-Training_P_00002_LEFT_CC", "L", "CC", _image(7)),
                     *t.roi("Mass-Training_P_00002_LEFT_CC_1", _image(8)[:12, :10], _mask(), same_series=True),
                     pathology="BENIGN")
    _write_rows(tmp_path / MASS_CSV, [row, good])
    index = build_index(tmp_path, workers=1)
    (a,) = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert a.problem and "pathology" in a.problem and "\n" not in a.problem and "\0" not in a.problem
    assert not a.malignant and not cbis_ddsm.is_benign(a.pathology)
    usable, _ = select_images(index, ("CC",))
    assert ("P_00001", "L") not in {(i.patient_id, i.laterality) for i in usable}
    summary = summarize_index(index)
    assert (summary.lesions, summary.malignant, summary.benign) == (2, 0, 1)  # the unknown one is not benign
    assert any("pathology" in p.reason for p in summary.problems)


def test_labels_empty_pathology_with_a_mask_keeps_the_lesion_as_a_problem(tmp_path):
    """Before: treated as NORMAL, the lesion dropped and the image called lesion-free. A lesion without a mask
    was lesion-free too."""
    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    (site / "masks").mkdir()
    for name, seed in (("a", 1), ("b", 2), ("c", 3), ("d", 4)):
        cv2.imwrite(str(site / "images" / f"{name}.png"), _image(seed))
    cv2.imwrite(str(site / "masks" / "a.png"), _mask())
    cv2.imwrite(str(site / "masks" / "c.png"), _mask())
    (site / "labels.csv").write_text(
        "image,mask,pathology,patient,laterality,view\n"
        "images/a.png,masks/a.png,,X1,L,CC\n"
        "images/b.png,,MALIGNANT,X2,L,CC\n"
        "images/c.png,masks/c.png,NORMAL,X3,L,CC\n"
        "images/d.png,,NORMAL,X4,L,CC\n"
    )
    index = build_index(site, workers=1)
    by_patient = {i.patient_id: i for i in index.images}
    (a,) = by_patient["X1"].abnormalities
    assert a.problem == "pathology is empty" and a.mask_path.endswith("a.png")
    (b,) = by_patient["X2"].abnormalities
    assert b.problem == "no mask for a MALIGNANT lesion" and b.pathology == "MALIGNANT"
    (c,) = by_patient["X3"].abnormalities
    assert c.problem == "pathology NORMAL with a mask"
    assert by_patient["X4"].abnormalities == [] and by_patient["X4"].gt_known  # the one true lesion-free image
    usable, _ = select_images(index, ("CC",))
    assert [i.patient_id for i in usable] == ["X4"]


@pytest.mark.parametrize("break_it, line", [
    (lambda text: text.replace(",IRREGULAR,", ',"IRREGULAR,', 1), 2),  # an opening quote mid-row
    (lambda text: text.replace('000001.dcm\n"', "000001.dcm\n", 1), 2),  # the last cell's closing quote lost
    (lambda text: text.replace(",IRREGULAR,", ',"IRREGULAR\n,', 1) + '"\n', 2),  # a quote that closes far below
    (lambda text: text.rstrip('"\n') + "\n", 4),  # the last row's quote never closed
    (lambda text: text.replace(",SPICULATED,", ',"SPICULATED,', 1).replace(",SPICULATED,", ',SPICULATED",', 1), 2),
])
def test_unbalanced_quote_makes_the_csv_unreadable_with_its_line(tmp_path, break_it, line):
    """Before: the rows after the quote were swallowed into one field or shifted, and nothing was reported."""
    t, row = _one_patient(tmp_path)
    second = dict(row, **{"abnormality id": "2"})
    path = _write_rows(tmp_path / MASS_CSV, [row, second])
    path.write_text(break_it(path.read_text()))
    index = build_index(tmp_path, workers=1)
    (reason,) = _reasons(index)[MASS_CSV]
    assert reason.startswith(f"unreadable CSV: line {line}: ") and "unbalanced quote" in reason, reason
    assert not any(i.abnormalities or i.gt_known for i in index.images)


def test_trailing_newline_and_na_still_read(tmp_path):
    """The published quirks keep working: a newline inside the last quoted cell, NA and empty values, CRLF."""
    t, row = _one_patient(tmp_path, **{"mass shape": "NA", "mass margins": "", "subtlety": "0"})
    path = _write_rows(tmp_path / MASS_CSV, [row])
    assert '.dcm\n"' in path.read_text()
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    (parsed,) = cbis_ddsm.read_description_csv(path)
    assert parsed.problem is None and parsed.mass_shape is None and parsed.subtlety is None
    assert parsed.crop_or_mask_paths[1].endswith(".dcm")
    index = build_index(tmp_path, workers=1)
    assert index.skipped == []
    (a,) = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert a.problem is None and a.mask_path


def test_semicolon_and_tab_delimited_csvs_are_read(tmp_path):
    """Before: a ';' CSV (Excel in many locales) was ignored and the folder indexed without truth."""
    t, row = _one_patient(tmp_path / "cbis")
    _write_rows(tmp_path / "cbis" / MASS_CSV, [row], delimiter=";")
    index = build_index(tmp_path / "cbis", workers=1)
    assert index.layout == "cbis-ddsm" and index.skipped == []
    (a,) = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert a.pathology == "MALIGNANT" and a.problem is None

    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    cv2.imwrite(str(site / "images" / "a.png"), _image(1))
    cv2.imwrite(str(site / "images" / "m.png"), _mask())
    (site / "labels.csv").write_text("image\tmask\tpathology\tpatient\tlaterality\tview\n"
                                     "images/a.png\timages/m.png\tBENIGN\tX1\tL\tCC\n",
                                     encoding="utf-16")  # Excel's "Unicode text"
    index = build_index(site, workers=1)
    assert index.layout == "labelled-folder" and index.skipped == []
    (a,) = index.images[0].abnormalities
    assert a.pathology == "BENIGN" and a.problem is None


@pytest.mark.parametrize("content, reason", [
    (b"", "unreadable CSV: empty file"),
    (b"\n  \n", "unreadable CSV: no text, only blanks"),
    (bytes(range(256)) * 40, "unreadable CSV: binary content, not a text CSV"),
    (b"image,mask,pathology\nimages/a.dcm,,NORMAL\n",
     "unreadable CSV: looks like a labels CSV (image,mask,pathology,patient) but has no 'patient' column"),
])
def test_empty_binary_and_incomplete_csvs_are_listed(tmp_path, content, reason):
    """Before: each was ignored without a word and the folder indexed as plain DICOM."""
    make_dicom(tmp_path / "images" / "a.dcm", _image(1), PatientID="X1", ImageLaterality="L", ViewPosition="CC")
    (tmp_path / "labels.csv").write_bytes(content)
    index = build_index(tmp_path, workers=1)
    assert _reasons(index) == {"labels.csv": [reason]}
    assert [i.gt_known for i in index.images] == [False]


def test_duplicate_rows_give_one_abnormality(tmp_path):
    """Before: a repeated row (or a second copy of a CSV) doubled the abnormalities."""
    t, row = _one_patient(tmp_path)
    _write_rows(tmp_path / MASS_CSV, [row, dict(row)])
    (tmp_path / "copy").mkdir()
    _write_rows(tmp_path / "copy" / MASS_CSV, [row])
    index = build_index(tmp_path, workers=1)
    (a,) = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert a.problem is None and a.malignant
    assert sorted(r for rs in _reasons(index).values() for r in rs) == [
        f"row 1: repeats {MASS_CSV} row 1; left out", "row 2: repeats row 1; left out"]


def test_same_abnormality_with_other_values_is_a_problem_on_both(tmp_path):
    t, row = _one_patient(tmp_path)
    _write_rows(tmp_path / MASS_CSV, [row, dict(row, pathology="BENIGN")])
    index = build_index(tmp_path, workers=1)
    first, second = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert "row 2, with other values" in first.problem and "row 1, with other values" in second.problem


def test_labels_duplicates_and_contradictions(tmp_path):
    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    for name, seed in (("a", 1), ("b", 2)):
        cv2.imwrite(str(site / "images" / f"{name}.png"), _image(seed))
    cv2.imwrite(str(site / "images" / "ma.png"), _mask())
    cv2.imwrite(str(site / "images" / "mb.png"), _mask())
    (site / "labels.csv").write_text(
        "image,mask,pathology,patient,laterality,view\n"
        "images/a.png,images/ma.png,MALIGNANT,X1,L,CC\n"
        "images/a.png,images/ma.png,MALIGNANT,X1,L,CC\n"
        "images/b.png,images/mb.png,BENIGN,X2,R,CC\n"
        "images/b.png,,NORMAL,X2,R,CC\n"
    )
    index = build_index(site, workers=1)
    by_patient = {i.patient_id: i for i in index.images}
    (a,) = by_patient["X1"].abnormalities
    assert a.problem is None
    assert _reasons(index)["labels.csv"] == ["row 2: repeats row 1; left out"]
    assert all(b.problem for b in by_patient["X2"].abnormalities)
    assert any("calls this image NORMAL" in b.problem for b in by_patient["X2"].abnormalities)


def test_labels_rows_with_the_same_image_and_mask_but_other_values_are_a_problem_on_both():
    def row(csv: str, number: int, pathology: str) -> LabelRow:
        return LabelRow(csv, number, Path("a.png"), Path("ma.png"), pathology, "X1", csv_path=f"site/{csv}")

    kept, notes = check_label_rows([row("labels.csv", 1, "MALIGNANT"), row("labels.csv", 2, "BENIGN"),
                                    row("more.csv", 1, "MALIGNANT")])
    assert [(r.row, r.problem) for r in kept] == [
        (1, "row 2 names the same image and mask with other values"),
        (2, "row 1 names the same image and mask with other values")]
    assert notes == [("site/more.csv", "row 1: repeats labels.csv row 1; left out")]


def test_field_over_the_csv_limit_is_listed_not_a_traceback(tmp_path):
    """Before: _csv.Error 'field larger than field limit (131072)' escaped build_index."""
    t, row = _one_patient(tmp_path, **{"mass shape": "X" * 200_000})
    _write_rows(tmp_path / MASS_CSV, [row])
    index = build_index(tmp_path, workers=1)
    assert _reasons(index)[MASS_CSV] == ["unreadable CSV: line 2: a field longer than 131072 characters"]


def test_shifted_values_are_a_problem_row(tmp_path):
    """A value with an unquoted comma shifts every later column: the row's truth is not trusted."""
    t, row = _one_patient(tmp_path)
    path = _write_rows(tmp_path / MASS_CSV, [row])
    path.write_text(path.read_text().replace(",IRREGULAR,", ",IRREGULAR,LOBULATED,", 1))
    index = build_index(tmp_path, workers=1)
    assert _reasons(index)[MASS_CSV] == [
        "row 1: 15 values where the header has 14 columns (a value with an unquoted comma?); the row is not used"]
    assert not any(i.abnormalities or i.gt_known for i in index.images)  # neither a lesion nor "lesion-free" guessed


def test_missing_values_are_problem_rows(tmp_path):
    t, row = _one_patient(tmp_path, **{"abnormality id": "", "abnormality type": "lump"})
    no_image = dict(row, **{"image file path": "", "abnormality id": "2", "abnormality type": "mass"})
    _write_rows(tmp_path / MASS_CSV, [row, no_image])
    index = build_index(tmp_path, workers=1)
    (a,) = _by_view(index)[("P_00001", "L", "CC")].abnormalities
    assert "abnormality id is empty" in a.problem and "abnormality type 'lump' is neither mass nor calcification" in a.problem
    assert any(r.startswith("row 2: image file path is empty") for r in _reasons(index)[MASS_CSV])


def test_unrelated_csvs_stay_quiet(tmp_path):
    """A folder's own CSVs that are not ours never become errors, even with a few familiar names."""
    t, row = _one_patient(tmp_path)
    t.write()  # the retriever's metadata.csv (and no description CSV yet)
    _write_rows(tmp_path / MASS_CSV, [row])
    _write_rows(tmp_path / "calc_case_description_test_set.csv", [], columns=csv_kinds.CALC_COLUMNS)  # header only
    (tmp_path / "notes.csv").write_text('patient_id,pathology,age\nP_00001,"broken quote,60\n')
    (tmp_path / "site_export.csv").write_text("a;b;c\n1;2;3\n")
    index = build_index(tmp_path, workers=1)
    assert index.skipped == []
    assert _by_view(index)[("P_00001", "R", "CC")].gt_known  # the clean view is a known negative


def test_readers_raise_only_typed_errors(tmp_path, monkeypatch):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CsvError):
        cbis_ddsm.read_description_csv(path)
    with pytest.raises(CsvError):
        cbis_ddsm.read_metadata_csv(path)
    assert csv_kinds.csv_kind(path) is None
    big = tmp_path / "big.csv"
    big.write_text("image,mask,pathology,patient\n" + "images/a.png,,NORMAL,X1\n" * 50_000)  # 1.2 MB
    monkeypatch.setattr(csv_input, "MAX_CSV_BYTES", 1024 * 1024)
    with pytest.raises(CsvError, match=r"^big.csv: larger than 1 MB \(1 MB\)$"):  # refused before it is read
        read_labels_csv(big)


def test_cli_index_json_lists_an_unreadable_csv(tmp_path):
    t, row = _one_patient(tmp_path)
    _write_rows(tmp_path / MASS_CSV, [row], columns=tuple(c for c in MASS_COLUMNS if c != "pathology"))
    result = subprocess.run([sys.executable, "-m", "model.cli", "index", str(tmp_path), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    skipped = json.loads(result.stdout)["skipped"]
    assert {"path": str((tmp_path / MASS_CSV).resolve()),
            "reason": "unreadable CSV: looks like a CBIS-DDSM mass description CSV but has no 'pathology' column"} in skipped


def test_a_row_without_its_optional_last_cells_is_read(tmp_path):
    """Hand-made CSVs leave optional trailing cells out: those are empty, not a shifted row."""
    make_dicom(tmp_path / "images" / "a.dcm", _image(1), PatientID="X1", ImageLaterality="L", ViewPosition="CC")
    (tmp_path / "labels.csv").write_text("image,mask,pathology,patient,laterality,view,type\nimages/a.dcm,,NORMAL,X1\n")
    index = build_index(tmp_path, workers=1)
    assert index.skipped == []
    assert [(i.patient_id, i.abnormalities, i.gt_known) for i in index.images] == [("X1", [], True)]
