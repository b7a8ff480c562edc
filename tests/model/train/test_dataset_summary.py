"""Folder summaries before a retrain: layout, counts checked against what the writer wrote, problems, trainability."""

from __future__ import annotations

import csv
import json
import re

import cv2
import numpy as np
import pytest

from model.data.csv_kinds import MASS_COLUMNS
from model.train.dataset_summary import FolderSummary, summarize_folder
from model.evaluate.evaluation import dataset_fingerprint
from model.data.study_index import build_index, index_from_json
from model.errors import Cancelled
from model.data.synth.cbis_writer import plan_patients
from tests.conftest import make_dicom

SHAPE = (64, 48)


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1000, 40000, SHAPE, dtype=np.uint16)


def _mask(shape=SHAPE) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[shape[0] // 4 : shape[0] // 2, shape[1] // 4 : shape[1] // 2] = 255
    return m


def _csv_rows(root, pattern: str) -> list[dict]:
    rows = []
    for path in sorted(root.glob(pattern)):
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def test_demo_folder_counts_match_what_the_writer_wrote(demo_root):
    summary = summarize_folder(demo_root, workers=1)
    # expected figures from the files the writer left: its CSVs and the retriever's metadata.csv, plus its plan
    mass, calc = _csv_rows(demo_root, "mass_case_*.csv"), _csv_rows(demo_root, "calc_case_*.csv")
    lesions = mass + calc
    full = [m for m in _csv_rows(demo_root, "metadata.csv") if m["Series Description"] == "full mammogram images"]
    patients = {re.search(r"P_\d+", m["Subject ID"]).group(0) for m in full}
    plan = plan_patients(6, 11)  # conftest: patients=6, seed=11
    planned = [a for p in plan for b in p.breasts.values() for a in b.abnormalities]
    assert len(lesions) == 2 * len(planned)  # one CSV row per abnormality and view (CC, MLO)

    assert summary.layout == "cbis-ddsm" and summary.views == ("CC",)
    assert summary.patients == len(patients) == len(plan)
    assert summary.images == len(full)
    assert summary.cc_images == sum(m["Subject ID"].endswith("_CC") for m in full)
    assert summary.mlo_images == sum(m["Subject ID"].endswith("_MLO") for m in full)
    assert summary.images_with_ground_truth == len(full)  # every demo patient is in a description CSV
    assert summary.lesions == len(lesions)
    assert summary.malignant == sum(r["pathology"] == "MALIGNANT" for r in lesions)
    assert summary.benign == len(lesions) - summary.malignant
    assert (summary.mass, summary.calcification) == (len(mass), len(calc))

    mismatched = [a for a in planned if a.mismatched_mask]
    assert mismatched  # the writer deals this quirk to any set of 6
    assert summary.mask_problems == 2 * len(mismatched)
    assert all("differs from image size" in p.reason and "csv row" in p.where for p in summary.problems if p.kind == "mask")
    assert summary.skipped_files == 0
    images_with_bad_mask = {(p.patient_id, side) for p in plan for side, b in p.breasts.items()
                            if any(a.mismatched_mask for a in b.abnormalities)}
    assert summary.usable_images == summary.cc_images - len(images_with_bad_mask)
    assert summary.lesion_free_images == sum(not b.abnormalities for p in plan for b in p.breasts.values())
    assert summary.trainable and summary.reasons == []
    assert summary.fingerprint == dataset_fingerprint(build_index(demo_root, workers=1))

    data = json.loads(json.dumps(summary.to_json()))
    assert data["problem_counts"] == {"mask": summary.mask_problems, "file": 0}
    assert FolderSummary.from_json(data) == summary
    text = summary.text()
    assert f"{summary.patients} patients, {summary.images} images" in text and "trainable: yes" in text


def test_problems_list_a_mismatched_mask_and_a_corrupt_file(tmp_path):
    site = tmp_path / "site"
    make_dicom(site / "images" / "a.dcm", _image(1), PatientID="X1", ImageLaterality="L", ViewPosition="CC")
    (site / "masks").mkdir()
    cv2.imwrite(str(site / "images" / "b.png"), _image(2))
    cv2.imwrite(str(site / "images" / "c.png"), _image(3))
    cv2.imwrite(str(site / "masks" / "a.png"), _mask())
    cv2.imwrite(str(site / "masks" / "b_wrong.png"), _mask((32, 24)))
    whole = (site / "images" / "a.dcm").read_bytes()
    (site / "images" / "d.dcm").write_bytes(whole[:300])  # cut short: unreadable
    (site / "labels.csv").write_text(
        "image,mask,pathology,patient,laterality,view\n"
        "images/a.dcm,masks/a.png,MALIGNANT,X1,L,CC\n"
        "images/b.png,masks/b_wrong.png,BENIGN,X2,R,CC\n"
        "images/c.png,,NORMAL,X3,R,MLO\n"
        "images/d.dcm,masks/a.png,BENIGN,X4,L,CC\n"
    )
    summary = summarize_folder(site, workers=1)
    assert summary.layout == "labelled-folder"
    assert (summary.patients, summary.images, summary.cc_images, summary.mlo_images) == (3, 3, 2, 1)
    assert (summary.lesions, summary.malignant, summary.benign) == (2, 1, 1)
    masks = [p for p in summary.problems if p.kind == "mask"]
    files = [p for p in summary.problems if p.kind == "file"]
    assert [(p.where, "32x24" in p.reason) for p in masks] == [("labels.csv row 2", True)]
    assert {p.where.rsplit("/", 1)[-1] for p in files} == {"d.dcm"}  # the file itself, and the row naming it
    assert len(files) == 2 and any("unreadable" in p.reason for p in files)
    assert summary.problem_counts == {"mask": 1, "file": 2}
    assert all("\n" not in p.reason for p in summary.problems)
    # one usable CC image (X1): a patient-level split needs two patients
    assert summary.usable_images == 1 and not summary.trainable
    (reason,) = summary.reasons
    assert "at least 2" in reason and "\n" not in reason
    text = summary.text()
    assert "problems: 1 masks, 2 files" in text and "not trainable" in text and "labels.csv row 2" in text


def _kaggle_copy(tmp_path):
    """The Kaggle re-packaging: csv/dicom_info.csv and jpeg/<SeriesUID>/*.jpg under a folder named CBIS-DDSM."""
    root = tmp_path / "CBIS-DDSM"
    (root / "csv").mkdir(parents=True)
    full_uid, mask_uid = "1.3.6.1.4.1.9590.1.2", "1.3.6.1.4.1.9590.1.4"
    for uid, name, pixels in ((full_uid, "1-1.jpg", (_image(1) // 256).astype(np.uint8)), (mask_uid, "1-2.jpg", _mask())):
        (root / "jpeg" / uid).mkdir(parents=True)
        cv2.imwrite(str(root / "jpeg" / uid / name), pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])
    subject = "Mass-Training_P_00007_LEFT_CC"
    with open(root / "csv" / "dicom_info.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_path", "image_path", "PatientID", "SeriesInstanceUID", "SeriesDescription"])
        w.writerow(["CBIS-DDSM/dicom/1.dcm", f"CBIS-DDSM/jpeg/{full_uid}/1-1.jpg", subject, full_uid, "full mammogram images"])
        w.writerow(["CBIS-DDSM/dicom/2.dcm", f"CBIS-DDSM/jpeg/{mask_uid}/1-2.jpg", subject, mask_uid, "ROI mask images"])
    with open(root / "csv" / "mass_case_description_train_set.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(MASS_COLUMNS)
        row = {"patient_id": "P_00007", "left or right breast": "LEFT", "image view": "CC", "abnormality id": "1",
               "abnormality type": "mass", "mass shape": "OVAL", "pathology": "BENIGN",
               "image file path": f"{subject}/1.2/{full_uid}/000000.dcm",
               "cropped image file path": "", "ROI mask file path": f"{subject}_1/1.2/{mask_uid}/000001.dcm"}
        w.writerow([row.get(c, "") for c in MASS_COLUMNS])
    return root


def test_layouts_and_reasons(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    summary = summarize_folder(empty)
    assert summary.layout == "empty" and not summary.trainable and "no mammograms" in summary.reasons[0]

    plain = tmp_path / "plain"
    make_dicom(plain / "a.dcm", _image(4), PatientID="S1", ImageLaterality="R", ViewPosition="CC")
    make_dicom(plain / "b.dcm", _image(5), PatientID="S2", ImageLaterality="L", ViewPosition="CC")
    summary = summarize_folder(plain, workers=1)
    assert summary.layout == "dicom-only" and (summary.patients, summary.images) == (2, 2)
    assert not summary.trainable and summary.reasons[0].startswith("no labelled CC image")

    kaggle = summarize_folder(_kaggle_copy(tmp_path), workers=1)
    assert kaggle.layout == "kaggle-jpeg" and (kaggle.images, kaggle.lesions, kaggle.benign) == (1, 1, 1)
    assert kaggle.mask_problems == 0 and kaggle.usable_images == 1

    # the layout travels with the index's JSON
    index = build_index(plain, workers=1)
    assert index_from_json(json.loads(json.dumps(index.to_json()))).layout == "dicom-only"


def test_summary_can_be_stopped(demo_root):
    with pytest.raises(Cancelled, match="^folder summary cancelled$"):
        summarize_folder(demo_root, should_stop=lambda: True, workers=1)
    with pytest.raises(FileNotFoundError):
        summarize_folder(demo_root / "no-such-folder")
