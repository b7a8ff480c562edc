"""CBIS-DDSM CSVs and folder indexing, on small hand-made trees with each published quirk."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.data import cbis_ddsm, csv_kinds, folder_csvs
from model.data.csv_kinds import CALC_COLUMNS, MASS_COLUMNS
from model.data.study_index import build_index, classify_roi_files
from tests.conftest import make_dicom

SHAPE = (64, 48)


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1000, 40000, SHAPE, dtype=np.uint16)


def _mask(shape=SHAPE, box=(20, 30, 10, 25)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[box[0] : box[1], box[2] : box[3]] = 255
    return m


class Tree:
    """Builds a CBIS-DDSM-shaped folder: DICOMs in NBIA folders plus description CSVs."""

    def __init__(self, root: Path, layout: str = "nbia"):
        self.root, self.layout = root, layout
        self.rows: dict[str, list[dict]] = {}
        self.meta: list[dict] = []
        self.n = 0

    def _series(self, subject: str, description: str, study: str, series: str) -> Path:
        self.n += 1
        if self.layout == "uid":  # the CSV's own paths
            folder = self.root / "CBIS-DDSM" / subject / study / series
        elif self.layout == "old":
            folder = self.root / "CBIS-DDSM" / subject / f"10-04-2016-DDSM-{self.n:05d}" / f"1-{description}-{self.n + 500:05d}"
        else:
            folder = self.root / "CBIS-DDSM" / subject / f"08-29-2017-DDSM-NA-{self.n:05d}" / f"1.000000-{description}-{self.n + 500:05d}"
        self.meta.append({"Series UID": series, "Subject ID": subject, "Series Description": description,
                          "File Location": "./" + folder.relative_to(self.root).as_posix()})
        return folder

    def _file(self, folder: Path, k: int) -> str:
        if self.layout == "uid":
            return f"{k:06d}.dcm"
        return f"{k:06d}.dcm" if self.layout == "old" else f"1-{k + 1}.dcm"

    def full(self, subject: str, side: str, view: str, pixels: np.ndarray) -> str:
        study, series = f"1.3.6.1.4.1.9590.{self.n}.1", f"1.3.6.1.4.1.9590.{self.n}.2"
        folder = self._series(subject, "full mammogram images", study, series)
        make_dicom(folder / self._file(folder, 0), pixels, PatientID=subject, PatientName=subject, Laterality=side,
                   PatientOrientation=view, SeriesInstanceUID=series, StudyInstanceUID=study,
                   SeriesDescription="full mammogram images")
        return f"{subject}/{study}/{series}/000000.dcm"

    def roi(self, subject: str, crop: np.ndarray, mask: np.ndarray, *, same_series: bool) -> tuple[str, str]:
        study = f"1.3.6.1.4.1.9590.{self.n}.7"
        paths = []
        series_uid = f"1.3.6.1.4.1.9590.{self.n}.8"
        folder = self._series(subject, "ROI mask images", study, series_uid) if same_series else None
        for k, (pixels, description) in enumerate(((crop, "cropped images"), (mask, "ROI mask images"))):
            if not same_series:
                series_uid = f"1.3.6.1.4.1.9590.{self.n}.9{k}"
                folder = self._series(subject, description, study, series_uid)
            index = k if same_series else 0
            make_dicom(folder / self._file(folder, index), pixels, PatientID=subject, SeriesInstanceUID=series_uid,
                       StudyInstanceUID=study, SeriesDescription="ROI mask images" if same_series else description,
                       InstanceNumber=index + 1)
            paths.append(f"{subject}/{study}/{series_uid}/{index:06d}.dcm")
        return paths[0], paths[1]

    def row(self, csv_name: str, **values) -> None:
        self.rows.setdefault(csv_name, []).append(values)

    def write(self, metadata: bool = True) -> Path:
        for name, rows in self.rows.items():
            columns = MASS_COLUMNS if name.startswith("mass") else CALC_COLUMNS
            with open(self.root / name, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(columns)
                for r in rows:
                    w.writerow([r.get(c, "") for c in columns])
        if metadata:
            with open(self.root / "metadata.csv", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=csv_kinds.METADATA_COLUMNS)
                w.writeheader()
                for m in self.meta:
                    w.writerow(m)
        return self.root


def _mass_row(patient, side, view, abn, image, crop, mask, pathology="MALIGNANT", **extra):
    row = {"patient_id": patient, "breast_density": "3", "left or right breast": side, "image view": view,
           "abnormality id": str(abn), "abnormality type": "mass", "mass shape": "IRREGULAR", "mass margins": "SPICULATED",
           "assessment": "4", "pathology": pathology, "subtlety": "4", "image file path": image,
           "cropped image file path": crop, "ROI mask file path": mask + "\n"}
    row.update(extra)
    return row


def build_tree(root: Path, layout: str = "nbia", metadata: bool = True) -> Path:
    t = Tree(root, layout)
    # P_00001 LEFT CC: two abnormalities on one image; the first has crop/mask in one series with the
    # columns swapped, the second two series in the published order.
    img = t.full("Mass-Training_P_00001_LEFT_CC", "L", "CC", _image(1))
    crop1, mask1 = t.roi("Mass-Training_P_00001_LEFT_CC_1", _image(2)[:12, :10], _mask(), same_series=True)
    crop2, mask2 = t.roi("Mass-Training_P_00001_LEFT_CC_2", _image(3)[:9, :9], _mask(box=(40, 50, 5, 15)), same_series=False)
    t.row("mass_case_description_train_set.csv", **_mass_row("P_00001", "LEFT", "CC", 1, img, mask1, crop1))
    t.row("mass_case_description_train_set.csv", **_mass_row("P_00001", "LEFT", "CC", 2, img, crop2, mask2, pathology="BENIGN"))
    # P_00001 again, in Calc-Test (one patient in two subsets), RIGHT MLO, mask of another size.
    img = t.full("Calc-Test_P_00001_RIGHT_MLO", "R", "MLO", _image(4))
    crop, mask = t.roi("Calc-Test_P_00001_RIGHT_MLO_1", _image(5)[:8, :8], _mask(shape=(50, 40), box=(5, 9, 5, 9)), same_series=True)
    t.row("calc_case_description_test_set.csv", **{
        "patient_id": "P_00001", "breast density": "0", "left or right breast": "RIGHT", "image view": "MLO",
        "abnormality id": "1", "abnormality type": "calcification", "calc type": "NA", "calc distribution": "",
        "assessment": "0", "pathology": "BENIGN_WITHOUT_CALLBACK", "subtlety": "0", "image file path": img,
        "cropped image file path": crop, "ROI mask file path": mask + "\n"})
    # P_00002: a listed image whose files never arrived, and an unlisted clean view.
    t.row("mass_case_description_train_set.csv", **_mass_row(
        "P_00002", "RIGHT", "CC", 1, "Mass-Training_P_00002_RIGHT_CC/1.2.3/1.2.4/000000.dcm",
        "Mass-Training_P_00002_RIGHT_CC_1/1.2.3/1.2.5/000000.dcm", "Mass-Training_P_00002_RIGHT_CC_1/1.2.3/1.2.5/000001.dcm"))
    t.full("Mass-Training_P_00002_LEFT_CC", "L", "CC", _image(6))
    return t.write(metadata)


@pytest.mark.parametrize("layout", ["nbia", "old", "uid"])
@pytest.mark.parametrize("metadata", [True, False])
def test_index_maps_every_layout(tmp_path, layout, metadata):
    index = build_index(build_tree(tmp_path, layout, metadata), workers=1)
    images = {(i.patient_id, i.laterality, i.view): i for i in index.images}
    assert set(images) == {("P_00001", "L", "CC"), ("P_00001", "R", "MLO"), ("P_00002", "L", "CC")}

    lcc = images[("P_00001", "L", "CC")]
    assert [a.id for a in lcc.abnormalities] == [1, 2]  # several abnormalities on one image
    first, second = lcc.abnormalities
    # the swapped row: the mask is the binary full-size file, whatever the column said
    assert first.mask_path and first.problem is None
    assert first.mask_path.endswith(("1-2.dcm", "000001.dcm"))
    assert first.crop_path and first.crop_path != first.mask_path
    assert second.mask_path and second.problem is None and "ROI mask images" in second.mask_path or layout == "uid"
    assert first.pathology == "MALIGNANT" and first.malignant
    assert second.pathology == "BENIGN" and not second.malignant

    rmlo = images[("P_00001", "R", "MLO")]
    (calc,) = rmlo.abnormalities
    assert calc.pathology == "BENIGN_WITHOUT_CALLBACK" and calc.malignant is False
    assert calc.problem and "50x40" in calc.problem and "64x48" in calc.problem  # flagged, not resized
    assert calc.calc_type is None and calc.calc_distribution is None  # NA and empty
    assert calc.assessment == 0 and calc.subtlety is None and calc.breast_density is None

    clean = images[("P_00002", "L", "CC")]
    assert clean.abnormalities == [] and clean.gt_known  # P_00002 is in a CSV: a negative view
    assert any("not found on disk" in s.reason for s in index.skipped)  # its missing listed image

    # grouping by patient across the mass and calc CSVs
    assert sorted(index.patients()) == ["P_00001", "P_00002"]
    assert len(index.patients()["P_00001"]) == 2


def test_folder_names_are_not_trusted(tmp_path):
    """Swap two full-image folders' names: the index must still follow the UIDs inside the files."""
    root = build_tree(tmp_path, "nbia", metadata=False)
    a = next((root / "CBIS-DDSM" / "Mass-Training_P_00001_LEFT_CC").glob("*/*"))
    b = next((root / "CBIS-DDSM" / "Mass-Training_P_00002_LEFT_CC").glob("*/*"))
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    index = build_index(root, workers=1)
    lcc = next(i for i in index.images if i.patient_id == "P_00001" and i.view == "CC")
    assert "P_00002_LEFT_CC" in lcc.path  # where the file with P_00001's series UID now lies
    assert len(lcc.abnormalities) == 2


def test_csv_reader_quirks(tmp_path):
    root = build_tree(tmp_path)
    rows = cbis_ddsm.read_description_csv(root / "mass_case_description_train_set.csv")
    assert rows[0].crop_or_mask_paths[1].endswith(".dcm")  # trailing newline stripped
    assert rows[0].breast_density == 3  # 'breast_density' spelling (mass)
    calc = cbis_ddsm.read_description_csv(root / "calc_case_description_test_set.csv")[0]
    assert calc.breast_density is None  # 'breast density' spelling (calc), value 0
    assert csv_kinds.csv_kind(root / "metadata.csv") == "metadata"
    renamed = root / "whatever.csv"
    shutil.copy(root / "calc_case_description_test_set.csv", renamed)
    assert csv_kinds.csv_kind(renamed) == "calc"  # by columns, not by name
    assert cbis_ddsm.is_malignant("MALIGNANT") and not cbis_ddsm.is_malignant("BENIGN_WITHOUT_CALLBACK")


def test_a_folder_identifies_each_csv_once(tmp_path, monkeypatch):
    """Before: the folder identified each CSV, then the reader it chose identified it again."""
    root = build_tree(tmp_path)
    (root / "labels.csv").write_text("image,mask,pathology,patient\nimg.png,,NORMAL,S1\n")
    identified = []

    def counting(path):
        identified.append(path.name)
        return identify(path)

    identify = csv_kinds.identify_csv
    monkeypatch.setattr(csv_kinds, "identify_csv", counting)
    monkeypatch.setattr(folder_csvs, "identify_csv", counting)
    csvs = sorted(root.glob("*.csv"))
    found = folder_csvs.read_folder_csvs(csvs, root)
    assert found.kinds == {"mass", "calc", "metadata", "labels"}
    assert sorted(identified) == sorted(p.name for p in csvs)


def test_mask_decided_by_content(tmp_path):
    image_shape = (64, 48)
    mask = make_dicom(tmp_path / "crop_named.dcm", _mask())  # binary, full size, misleading name
    crop = make_dicom(tmp_path / "mask_named.dcm", _image(9)[:10, :10])
    found_mask, found_crop, problem = classify_roi_files([crop, mask], image_shape)
    assert (found_mask, found_crop, problem) == (mask, crop, None)
    # a full-size grey image is not a mask
    grey = make_dicom(tmp_path / "grey.dcm", _image(10))
    found_mask, _, problem = classify_roi_files([grey], image_shape)
    assert found_mask is None and "no binary" in problem


def test_plain_dicom_folder_and_bad_files(tmp_path):
    site = tmp_path / "site"
    make_dicom(site / "a" / "img1.dcm", _image(1), PatientID="SITE123", ImageLaterality="R", ViewPosition="CC",
               PixelSpacing=[0.07, 0.07])
    make_dicom(site / "a" / "img2.dcm", _image(2), PatientID="SITE123", ImageLaterality="L", ViewPosition="CC")
    (site / "junk.bin").write_bytes(b"\x00\x01 nothing")
    data = (site / "a" / "img2.dcm").read_bytes()
    (site / "cut.dcm").write_bytes(data[:200])
    index = build_index(site, workers=1)
    assert [(i.patient_id, i.laterality, i.view, i.gt_known) for i in index.images] == [
        ("SITE123", "R", "CC", False), ("SITE123", "L", "CC", False)]
    assert index.images[0].pixel_spacing_mm == (0.07, 0.07)
    reasons = {Path(s.path).name: s.reason for s in index.skipped}
    assert set(reasons) == {"junk.bin", "cut.dcm"}
    assert all(r and "\n" not in r for r in reasons.values())


def test_cli_index_json(tmp_path):
    root = build_tree(tmp_path)
    (root / "stray.txt.bak").write_text("x")
    result = subprocess.run([sys.executable, "-m", "model.cli", "index", str(root), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"images", "skipped"}
    image = data["images"][0]
    assert set(image) >= {"path", "patient_id", "laterality", "view", "rows", "columns", "abnormalities"}
    abnormality = next(i for i in data["images"] if i["abnormalities"])["abnormalities"][0]
    assert set(abnormality) >= {"id", "type", "pathology", "malignant", "mask_path", "problem"}
    assert any(s["path"].endswith("stray.txt.bak") for s in data["skipped"])
    assert all(set(s) == {"path", "reason"} for s in data["skipped"])
    summary = subprocess.run([sys.executable, "-m", "model.cli", "index", str(root)], capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0 and "2 patients, 3 images" in summary.stdout


def test_labelled_folder(tmp_path):
    """A site's labelled folder: labels.csv naming images and masks; masks of another size are flagged."""
    import cv2

    site = tmp_path / "site"
    (site / "images").mkdir(parents=True)
    (site / "masks").mkdir()
    make_dicom(site / "images" / "a.dcm", _image(1), PatientID="X1", ImageLaterality="L", ViewPosition="CC")
    cv2.imwrite(str(site / "images" / "b.png"), _image(2))
    cv2.imwrite(str(site / "images" / "c.png"), _image(3))
    cv2.imwrite(str(site / "masks" / "a.png"), _mask())
    cv2.imwrite(str(site / "masks" / "b_wrong.png"), _mask(shape=(32, 24), box=(5, 9, 5, 9)))
    (site / "labels.csv").write_text(
        "image,mask,pathology,patient,laterality,view\n"
        "images/a.dcm,masks/a.png,MALIGNANT,X1,L,CC\n"
        "images/b.png,masks/b_wrong.png,BENIGN,X2,R,CC\n"
        "images/c.png,,NORMAL,X3,R,MLO\n"
        "images/missing.png,masks/a.png,BENIGN,X4,L,CC\n"
    )
    index = build_index(site, workers=1)
    by_patient = {i.patient_id: i for i in index.images}
    assert set(by_patient) == {"X1", "X2", "X3"}
    (a,) = by_patient["X1"].abnormalities
    assert a.malignant and a.mask_path.endswith("a.png") and a.problem is None
    (b,) = by_patient["X2"].abnormalities
    assert b.problem and "32x24" in b.problem
    assert by_patient["X3"].abnormalities == [] and by_patient["X3"].gt_known and by_patient["X3"].view == "MLO"
    assert any("missing.png" in s.path and "not found" in s.reason for s in index.skipped)
    assert not any(p.endswith("a.png") and "masks" in p for p in (i.path for i in index.images))


def test_kaggle_jpeg_copy(tmp_path):
    """The Kaggle re-packaging: csv/ with dicom_info.csv, jpeg/<SeriesUID>/1-N.jpg, 8-bit."""
    import cv2

    root = tmp_path / "kaggle"
    (root / "csv").mkdir(parents=True)
    full_uid, crop_uid, mask_uid = "1.3.6.1.4.1.9590.1.2", "1.3.6.1.4.1.9590.1.3", "1.3.6.1.4.1.9590.1.4"
    for uid, name, pixels in ((full_uid, "1-249.jpg", (_image(1) // 256).astype(np.uint8)),
                              (crop_uid, "1-250.jpg", (_image(2)[:10, :10] // 256).astype(np.uint8)),
                              (mask_uid, "1-251.jpg", _mask())):
        (root / "jpeg" / uid).mkdir(parents=True)
        cv2.imwrite(str(root / "jpeg" / uid / name), pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])
    subject = "Mass-Training_P_00007_LEFT_CC"
    with open(root / "csv" / "dicom_info.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_path", "image_path", "PatientID", "SeriesInstanceUID", "SeriesDescription", "Laterality", "Rows", "Columns"])
        for uid, name, desc in ((full_uid, "1-249.jpg", "full mammogram images"), (crop_uid, "1-250.jpg", "cropped images"),
                                (mask_uid, "1-251.jpg", "ROI mask images")):
            w.writerow([f"CBIS-DDSM/dicom/{name}.dcm", f"CBIS-DDSM/jpeg/{uid}/{name}", subject, uid, desc, "L", 64, 48])
    with open(root / "csv" / "mass_case_description_train_set.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(MASS_COLUMNS)
        row = _mass_row("P_00007", "LEFT", "CC", 1, f"{subject}/1.2/{full_uid}/000000.dcm",
                        f"{subject}_1/1.2/{crop_uid}/000000.dcm", f"{subject}_1/1.2/{mask_uid}/000001.dcm")
        w.writerow([row.get(c, "") for c in MASS_COLUMNS])
    # the Kaggle paths start with "CBIS-DDSM/jpeg/...": the download folder is named CBIS-DDSM
    kaggle = tmp_path / "CBIS-DDSM"
    root.rename(kaggle)
    index = build_index(kaggle, workers=1)
    (image,) = index.images
    assert (image.patient_id, image.laterality, image.view) == ("P_00007", "L", "CC")
    (a,) = image.abnormalities
    assert a.mask_path.endswith("1-251.jpg") and a.problem is None  # lossy JPEG mask still recognised by content
    assert a.crop_path.endswith("1-250.jpg")
    from model.data.masks import load_mask

    np.testing.assert_array_equal(load_mask(a.mask_path, (64, 48)), _mask() > 0)


def test_patients_are_reported_ready_in_order_with_their_masks_decided(demo_root):
    """A worklist can fill while indexing runs: each patient is reported once, complete, in the final order."""
    seen: list[tuple[str, list]] = []

    def progress(event):
        for image in event.ready:
            # at the moment of the report the patient's truth is final: masks decided (or a problem named)
            seen.append((image.path, [(a.mask_path is not None) or (a.problem is not None) for a in image.abnormalities]))

    index = build_index(demo_root, progress=progress)
    assert [path for path, _ in seen] == [image.path for image in index.images]
    assert all(all(flags) for _, flags in seen)
    assert any(flags for _, flags in seen), "the demo set has lesions"


def test_several_files_opened_together_are_indexed_together(tmp_path, ramp16):
    a = make_dicom(tmp_path / "a" / "one.dcm", ramp16, PatientID="PA", ImageLaterality="L", ViewPosition="CC")
    b = make_dicom(tmp_path / "b" / "two.dcm", ramp16, PatientID="PB", ImageLaterality="R", ViewPosition="MLO")
    make_dicom(tmp_path / "b" / "not-chosen.dcm", ramp16, PatientID="PC")
    bad = tmp_path / "b" / "bad.dcm"
    bad.write_bytes(b"DICM? no")
    index = build_index([a, b, bad])
    assert sorted((i.patient_id, i.laterality, i.view) for i in index.images) == [("PA", "L", "CC"), ("PB", "R", "MLO")]
    assert [s.path for s in index.skipped] == [str(bad)]
    assert index.root == str(tmp_path) and index.files_scanned == 3
    with pytest.raises(FileNotFoundError):
        build_index([a, tmp_path / "missing.dcm"])
