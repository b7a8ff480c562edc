"""Synthetic CBIS-DDSM download → index round trip, quirks present, determinism."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest

from model.data.cbis_ddsm import read_description_csv
from model.data.csv_kinds import csv_kind
from model.data.masks import load_mask
from model.data.study_index import build_index
from model.data.synth.cbis_writer import write_demo_dataset
from model.errors import ConfigError


def _rows(root: Path):
    return [r for p in sorted(root.glob("*.csv")) if csv_kind(p) in ("mass", "calc") for r in read_description_csv(p)]


def test_generator_index_round_trip(demo_root):
    index = build_index(demo_root, workers=1)
    assert index.skipped == []
    patients = index.patients()
    assert len(patients) == 6
    for images in patients.values():  # four views each
        assert sorted(i.name for i in images) == ["LCC", "LMLO", "RCC", "RMLO"]
        assert all(i.gt_known for i in images)
    rows = _rows(demo_root)
    assert sum(len(i.abnormalities) for i in index.images) == len(rows)
    for image in index.images:
        assert image.subject and image.subject.endswith(("LEFT_" if image.laterality == "L" else "RIGHT_") + image.view)
        for a in image.abnormalities:
            if a.problem:
                assert "differs from image size" in a.problem
                continue
            mask = load_mask(a.mask_path, (image.rows, image.columns))
            assert 0 < mask.sum() < 0.2 * mask.size
    # a lesion is seen in both views of its breast: CC and MLO rows pair up per breast
    per_breast = Counter((r.patient_id, r.side, r.view) for r in rows)
    for (patient, side, view), n in per_breast.items():
        other = "MLO" if view == "CC" else "CC"
        assert per_breast[(patient, side, other)] == n
    # most patients have a lesion-free breast, so false positives can be measured
    clean = [i for i in index.images if not i.abnormalities]
    assert len(clean) >= 8


def test_published_quirks_are_present(demo_root):
    raw = {p.name: p.read_text() for p in demo_root.glob("*_case_description_*.csv")}
    assert set(raw) == {"mass_case_description_train_set.csv", "mass_case_description_test_set.csv",
                        "calc_case_description_train_set.csv", "calc_case_description_test_set.csv"}
    assert any('.dcm\n"' in text for text in raw.values())  # newline inside the last quoted cell
    header = {name: text.splitlines()[0] for name, text in raw.items()}
    assert "breast_density" in header["mass_case_description_train_set.csv"]
    assert "breast density" in header["calc_case_description_train_set.csv"]
    rows = _rows(demo_root)
    pathologies = {r.pathology for r in rows}
    assert "MALIGNANT" in pathologies and "BENIGN_WITHOUT_CALLBACK" in pathologies
    assert any(r.assessment == 0 for r in rows)
    assert len({r.image_path for r in rows}) < len(rows)  # several abnormalities on one image
    subsets = {}
    for r in rows:
        subsets.setdefault(r.patient_id, set()).add(r.csv_name)
    assert any(len(s) > 1 for s in subsets.values())  # a patient in two subsets
    # crop/mask columns swapped in some rows: the 'ROI mask' column points at the grey crop there
    index = build_index(demo_root, workers=1)
    by_source = {a.source: a for i in index.images for a in i.abnormalities}
    def listed(csv_path: str) -> tuple[str, int]:
        parts = csv_path.split("/")
        return parts[2], int(parts[3][:6])

    def actual(dcm_path: str) -> tuple[str, int]:
        ds = pydicom.dcmread(dcm_path, stop_before_pixels=True)
        return ds.SeriesInstanceUID, int(ds.InstanceNumber) - 1

    swapped = 0
    for r in rows:
        a = by_source[f"{r.csv_name} row {r.row}"]
        assert a.mask_path and "cropped images" not in a.mask_path
        swapped += listed(r.crop_or_mask_paths[1]) != actual(a.mask_path)
    assert swapped > 0
    assert any(a.problem for a in by_source.values())  # a mask of another size
    # both series layouts: crop and mask together, and apart
    descriptions = Counter(Path(a.crop_path).parent.name.split("-")[1] for a in by_source.values() if a.crop_path)
    assert descriptions["cropped images"] > 0 and descriptions["ROI mask images"] > 0


def test_dicom_headers_look_like_cbis_ddsm(demo_root):
    index = build_index(demo_root, workers=1)
    ds = pydicom.dcmread(index.images[0].path)
    assert ds.Modality == "MG" and ds.ConversionType == "WSD" and ds.BodyPartExamined == "BREAST"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"  # implicit VR little endian
    assert ds.PatientID == ds.PatientName == index.images[0].subject
    assert ds.PatientOrientation in ("CC", "MLO") and ds.Laterality in ("L", "R")
    assert "ViewPosition" not in ds and "ImageLaterality" not in ds and "PixelSpacing" not in ds
    assert ds.BitsStored == 16 and ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.SeriesDescription == "full mammogram images"
    pixels = ds.pixel_array
    assert pixels.dtype == np.uint16 and pixels.shape[0] > pixels.shape[1]  # portrait, like the scans


def test_deterministic_for_a_seed(tmp_path):
    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}

    write_demo_dataset(tmp_path / "a", patients=2, seed=5, size="small", workers=1)
    write_demo_dataset(tmp_path / "b", patients=2, seed=5, size="small", workers=2)
    write_demo_dataset(tmp_path / "c", patients=2, seed=6, size="small", workers=1)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b
    assert a != c


def test_the_training_size_says_its_spacing_and_prepares_like_a_full_render(tmp_path):
    """--size training: 0.2 mm files that say so (the index reads it), and at 0.4 mm the same working image, breast and
    lesion mask as the full 0.05 mm render of the same view, in a sixteenth of the pixels."""
    from model.data.dicom_io import read_image
    from model.data.masks import load_truth
    from model.data.preprocess import PreprocessConfig, prepare

    write_demo_dataset(tmp_path / "t", patients=1, seed=5, size="training", workers=1)
    write_demo_dataset(tmp_path / "f", patients=1, seed=5, size="full", workers=1)
    config = PreprocessConfig(working_spacing_mm=0.4)
    prepared = {}
    for name in ("t", "f"):
        index = build_index(tmp_path / name, workers=1)
        image = next(i for i in sorted(index.images, key=lambda i: i.name) if i.abnormalities)
        assert pydicom.dcmread(image.path).get("ImagerPixelSpacing") == (["0.2", "0.2"] if name == "t" else None)
        assert image.pixel_spacing_mm == ((0.2, 0.2) if name == "t" else None)  # None: read as CBIS-DDSM's 0.05 mm
        mammogram = read_image(image.path)
        working, geometry, region = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, config)
        truth = geometry.to_working(load_truth(image, strict=True).usable[0].mask)
        prepared[name] = (working, truth, mammogram.pixels.size)
    (wt, mt, nt), (wf, mf, nf) = prepared["t"], prepared["f"]
    assert nf == pytest.approx(16 * nt, rel=0.02)
    h, w = min(wt.shape[0], wf.shape[0]), min(wt.shape[1], wf.shape[1])
    assert abs(wt.shape[0] - wf.shape[0]) <= 2 and abs(wt.shape[1] - wf.shape[1]) <= 2
    assert np.corrcoef(wt[:h, :w].ravel(), wf[:h, :w].ravel())[0, 1] > 0.97
    assert np.abs(wt[:h, :w] - wf[:h, :w]).mean() < 0.03
    overlap = (mt[:h, :w] & mf[:h, :w]).sum() / max((mt[:h, :w] | mf[:h, :w]).sum(), 1)
    assert mt.any() and overlap > 0.85


def test_a_size_or_patient_count_it_cannot_make_is_a_setting_refused(tmp_path, capsys):
    from model.cli.main import main

    with pytest.raises(ConfigError, match=r"^size must be one of \['full', 'small', 'training'\]$"):
        write_demo_dataset(tmp_path / "a", size="huge")
    assert main(["demo-data", str(tmp_path / "b"), "--patients", "0"]) == 2  # a bad option: exit 2, as before
    assert capsys.readouterr().err == "bcir demo-data: patients must be at least 1\n"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_metadata_csv_matches_the_tree(demo_root):
    with open(demo_root / "metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        folder = demo_root / row["File Location"]
        files = list(folder.glob("*.dcm"))
        assert len(files) == int(row["Number of Images"])
        assert pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID == row["Series UID"]
