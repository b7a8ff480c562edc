"""Write a synthetic CBIS-DDSM download: NBIA folders, the four CSVs with their quirks, MG DICOMs.

``bcir demo-data OUT`` calls :func:`write_demo_dataset`. The pictures come from
:mod:`model.data.synth.phantom`; this module decides the cases (density, lesions,
pathology, subsets) and writes them exactly in the shapes CBIS-DDSM ships:

* ``CBIS-DDSM/<Subject>/<MM-DD-YYYY>-DDSM-[NA-]NNNNN/1.000000-full mammogram images-NNNNN/1-1.dcm``
  (and, for some patients, the older retriever's ``1-full mammogram images-NNNNN/000000.dcm``);
* crop and mask in one ``ROI mask images`` series (``1-1.dcm``, ``1-2.dcm``) or in two series;
* the four description CSVs with the published headers and quirks (swapped crop/mask
  columns, a trailing newline inside the last quoted path, ``NA`` calc types, empty
  distributions, assessment/density/subtlety 0, spelling variants, a patient in two
  subsets, several abnormalities on one image, one mask whose size differs from its image);
* the retriever's ``metadata.csv``.

Deterministic for a seed: same arguments, same bytes.
"""

from __future__ import annotations

import csv
import io
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from model.data.cbis_ddsm import CROP_SERIES, FULL_SERIES, MASK_SERIES
from model.data.csv_kinds import CALC_COLUMNS, MASS_COLUMNS, METADATA_COLUMNS
from model.data.synth.phantom import render_view
from model.data.synth.specs import BreastSpec, LesionSpec
from model.errors import ConfigError

UID_ROOT = "1.3.6.1.4.1.9590.100.1.2."  # the prefix CBIS-DDSM's UIDs carry
PIXEL_MM = {"full": 0.05, "training": 0.2, "small": 0.4}
# Sizes whose files say their pixel spacing (ImagerPixelSpacing). CBIS-DDSM's files do not, so "full" does not; "small"
# does not either, so that the tests' tiny images read as CBIS-DDSM's do (a reader assumes 0.05 mm). "training" is
# rendered at 0.2 mm, a sixteenth of the bytes and a third of the time of "full", and says so: prepared at 0.4 mm it
# gives the working image a full render gives (same anatomy, lesions and masks; see the README's training data).
SPACING_WRITTEN = {"training"}

MASS_BENIGN_SHAPES = ["ROUND", "OVAL", "OVAL", "LOBULATED"]
MASS_BENIGN_MARGINS = ["CIRCUMSCRIBED", "CIRCUMSCRIBED", "OBSCURED", "MICROLOBULATED", "ILL_DEFINED"]
MASS_MALIGNANT_SHAPES = ["IRREGULAR", "IRREGULAR", "ARCHITECTURAL_DISTORTION", "LOBULATED", "OVAL"]
MASS_MALIGNANT_MARGINS = ["SPICULATED", "SPICULATED", "ILL_DEFINED", "MICROLOBULATED", "OBSCURED"]
CALC_BENIGN_TYPES = ["COARSE", "ROUND_AND_REGULAR", "LUCENT_CENTER", "LUCENT_CENTERED", "VASCULAR", "LARGE_RODLIKE", "PUNCTATE"]
CALC_MALIGNANT_TYPES = ["PLEOMORPHIC", "PLEOMORPHIC", "FINE_LINEAR_BRANCHING", "AMORPHOUS", "PUNCTATE-PLEOMORPHIC"]
CALC_BENIGN_DISTRIBUTIONS = ["DIFFUSELY_SCATTERED", "REGIONAL", "CLUSTERED"]
CALC_MALIGNANT_DISTRIBUTIONS = ["CLUSTERED", "LINEAR", "SEGMENTAL", "CLUSTERED-LINEAR"]


@dataclass
class DemoAbnormality:
    id: int
    lesion: LesionSpec
    pathology: str
    assessment: int
    subtlety_written: int  # what the CSV says (0 occurs)
    mismatched_mask: bool = False
    separate_series: bool = False  # crop and mask in two series instead of one
    swap_columns: bool = False
    trailing_newline: bool = True
    calc_type_written: str = ""  # "NA" occurs
    calc_distribution_written: str = ""  # often empty


@dataclass
class DemoBreast:
    side: str  # "L" / "R"
    abnormalities: list[DemoAbnormality] = field(default_factory=list)
    chest_wall_flipped: dict[str, bool] = field(default_factory=dict)  # per view


@dataclass
class DemoPatient:
    patient_id: str
    density: int
    density_written: int
    breast: BreastSpec
    breasts: dict[str, DemoBreast]
    subsets: dict[str, str]  # lesion kind -> "Training"/"Test"
    old_retriever: bool = False


@dataclass
class DemoSummary:
    root: Path
    patients: int
    images: int
    abnormalities: int
    malignant: int
    files: int
    bytes: int


# ---------------------------------------------------------------------------
# planning the cases


def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def _plan_lesion(rng: np.random.Generator, kind: str, malignant: bool, subtlety: int, seed: int) -> LesionSpec:
    depth, offset = float(rng.uniform(0.3, 0.75)), float(rng.uniform(-0.55, 0.55))
    if kind == "mass":
        shape = _pick(rng, MASS_MALIGNANT_SHAPES if malignant else MASS_BENIGN_SHAPES)
        margins = _pick(rng, MASS_MALIGNANT_MARGINS if malignant else MASS_BENIGN_MARGINS)
        size = float(rng.uniform(10, 28) if malignant else rng.uniform(7, 22))
        return LesionSpec("mass", malignant, size, subtlety, depth, offset, shape=shape, margins=margins, seed=seed)
    calc_type = _pick(rng, CALC_MALIGNANT_TYPES if malignant else CALC_BENIGN_TYPES)
    distribution = _pick(rng, CALC_MALIGNANT_DISTRIBUTIONS if malignant else CALC_BENIGN_DISTRIBUTIONS)
    size = float(rng.uniform(6, 18))
    return LesionSpec("calcification", malignant, size, subtlety, depth, offset,
                      calc_type=calc_type, calc_distribution=distribution, seed=seed)


def plan_patients(n: int, seed: int) -> list[DemoPatient]:
    """Decide every case of a demo set. Quirks are dealt round-robin so any set of 4+ patients has each."""
    rng = np.random.default_rng(seed)
    patients: list[DemoPatient] = []
    number = 0
    abnormality_counter = 0
    for i in range(n):
        number += int(rng.integers(1, 6))
        density = int(rng.choice([1, 2, 3, 4], p=[0.12, 0.38, 0.38, 0.12]))
        breast = BreastSpec(density=density, size=float(rng.uniform(0.8, 1.2)), seed=int(rng.integers(2**31)))
        lesion_side = _pick(rng, ["L", "R"])
        breasts = {s: DemoBreast(s) for s in ("R", "L")}
        # kinds on the lesion breast; patient 2 (mod 5) gets a mass and a calcification on one image.
        kinds = [_pick(rng, ["mass", "mass", "calcification"])]
        if i % 5 == 2:
            kinds = ["mass", "calcification"]
        sides = [lesion_side] * len(kinds)
        if rng.random() < 0.15:  # the other breast is usually, not always, clean
            kinds.append(_pick(rng, ["mass", "calcification"]))
            sides.append("L" if lesion_side == "R" else "R")
        for kind, side in zip(kinds, sides):
            malignant = bool(rng.random() < 0.45)
            subtlety = int(rng.choice([1, 2, 3, 4, 5], p=[0.1, 0.2, 0.3, 0.25, 0.15]))
            if kind == "calcification" and not malignant:
                pathology = _pick(rng, ["BENIGN", "BENIGN_WITHOUT_CALLBACK", "BENIGN_WITHOUT_CALLBACK"])
            else:
                pathology = "MALIGNANT" if malignant else _pick(rng, ["BENIGN", "BENIGN", "BENIGN_WITHOUT_CALLBACK"])
            assessment = int(_pick(rng, [4, 4, 5, 5]) if malignant else _pick(rng, [2, 3, 3, 4]))
            k = abnormality_counter
            abnormality_counter += 1
            spec = _plan_lesion(rng, kind, malignant, subtlety, seed=int(rng.integers(2**31)))
            breasts[side].abnormalities.append(
                DemoAbnormality(
                    id=len(breasts[side].abnormalities) + 1,
                    lesion=spec,
                    pathology=pathology,
                    assessment=0 if k % 7 == 3 else assessment,
                    subtlety_written=0 if k % 11 == 5 else subtlety,
                    mismatched_mask=(k % 25 == 4),  # rare, as in CBIS-DDSM
                    separate_series=(k % 3 == 1),
                    swap_columns=(k % 2 == 1),
                    trailing_newline=(k % 4 != 2),
                    calc_type_written="NA" if k % 5 == 4 else spec.calc_type,
                    calc_distribution_written="" if k % 3 == 2 else spec.calc_distribution,
                )
            )
        for b in breasts.values():
            b.chest_wall_flipped = {v: bool(rng.random() < 0.25) for v in ("CC", "MLO")}
        subsets = {"mass": _pick(rng, ["Training"] * 4 + ["Test"]), "calcification": _pick(rng, ["Training"] * 4 + ["Test"])}
        if i % 5 == 2:  # one patient in two subsets (P_00041 is in Mass-Training and Calc-Test)
            subsets = {"mass": "Training", "calcification": "Test"}
        patients.append(
            DemoPatient(
                patient_id=f"P_{number:05d}", density=density, density_written=0 if i % 8 == 6 else density,
                breast=breast, breasts=breasts, subsets=subsets, old_retriever=(i % 4 == 3),
            )
        )
    return patients


# ---------------------------------------------------------------------------
# DICOM writing


def _uid(*parts) -> str:
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(p) for p in parts])


def _date(rng_value: int) -> tuple[str, str]:
    """(folder date MM-DD-YYYY, DICOM date YYYYMMDD) from a small integer."""
    month, day, year = 1 + rng_value % 12, 1 + (rng_value // 12) % 28, 2016 + (rng_value // 336) % 2
    return f"{month:02d}-{day:02d}-{year}", f"{year}{month:02d}{day:02d}"


def _dataset(pixels: np.ndarray, *, subject: str, study_uid: str, series_uid: str, instance: int,
             description: str, side: str, view: str, dicom_date: str, spacing_mm: float | None = None) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    sop_uid = _uid(series_uid, instance)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.40.0.13.1.1"  # dcm4che wrote CBIS-DDSM
    meta.ImplementationVersionName = "dcm4che-1.4.31"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = dicom_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "000000"
    ds.AccessionNumber = ""
    ds.Modality = "MG"
    ds.ConversionType = "WSD"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = ""
    ds.SeriesDescription = description
    ds.PatientName = subject
    ds.PatientID = subject
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = "BREAST"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "DDSM"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.PatientOrientation = view  # CBIS-DDSM keeps the view here
    ds.Laterality = side
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if spacing_mm is not None:
        ds.ImagerPixelSpacing = [f"{spacing_mm:g}", f"{spacing_mm:g}"]
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def _write_dicom(ds: Dataset, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=True)
    data = buffer.getvalue()
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data)


@dataclass
class _Series:
    subject: str
    study_uid: str
    series_uid: str
    folder: Path  # relative to the CBIS-DDSM folder
    description: str
    files: list[str]  # CSV-style file names (000000.dcm, 000001.dcm)
    date: str


def _study_folder(patient: DemoPatient, subject: str, study_uid: str, folder_date: str) -> str:
    tail = study_uid[-5:]
    return f"{folder_date}-DDSM-{tail}" if patient.old_retriever else f"{folder_date}-DDSM-NA-{tail}"


def _series_folder(patient: DemoPatient, description: str, series_uid: str) -> str:
    tail = series_uid[-5:]
    return f"1-{description}-{tail}" if patient.old_retriever else f"1.000000-{description}-{tail}"


def _file_name(patient: DemoPatient, instance: int) -> str:
    return f"{instance - 1:06d}.dcm" if patient.old_retriever else f"1-{instance}.dcm"


def _crop_box(mask: np.ndarray, image_shape: tuple[int, int], margin: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return slice(0, min(64, image_shape[0])), slice(0, min(64, image_shape[1]))
    y0, y1 = max(0, ys.min() - margin), min(image_shape[0], ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(image_shape[1], xs.max() + margin + 1)
    return slice(y0, y1), slice(x0, x1)


def _render_patient(args: tuple[DemoPatient, Path, float, int, bool]) -> tuple[list[dict], list[_Series], int, int]:
    """Render and write one patient's four views and ROI files; returns CSV rows, series and sizes."""
    patient, cbis_root, pixel_mm, seed, write_spacing = args
    spacing_mm = pixel_mm if write_spacing else None
    rows: list[dict] = []
    series: list[_Series] = []
    files = total_bytes = 0
    date_index = int(patient.patient_id[2:]) * 7 + seed
    folder_date, dicom_date = _date(date_index)
    roi_folder_date, roi_dicom_date = _date(date_index + 1)
    kinds = [a.lesion.kind for b in patient.breasts.values() for a in b.abnormalities]
    default_kind = kinds[0] if kinds else "mass"
    for side in ("R", "L"):
        breast = patient.breasts[side]
        for view in ("CC", "MLO"):
            side_word = "LEFT" if side == "L" else "RIGHT"
            kind = breast.abnormalities[0].lesion.kind if breast.abnormalities else default_kind
            prefix = ("Mass" if kind == "mass" else "Calc") + "-" + patient.subsets[kind]
            subject = f"{prefix}_{patient.patient_id}_{side_word}_{view}"
            natural = "right" if side == "R" else "left"
            wall = ({"left": "right", "right": "left"}[natural]) if breast.chest_wall_flipped.get(view) else natural
            rendered = render_view(
                patient.breast, side, view, [a.lesion for a in breast.abnormalities],
                pixel_mm=pixel_mm, chest_wall_side=wall, label=True, seed=zlib.crc32(f"{seed}/{patient.patient_id}/{side}/{view}".encode()),
            )
            study_uid = _uid(seed, subject, "study")
            series_uid = _uid(seed, subject, "full")
            rel_folder = Path(subject) / _study_folder(patient, subject, study_uid, folder_date) / _series_folder(patient, FULL_SERIES, series_uid)
            ds = _dataset(rendered.image, subject=subject, study_uid=study_uid, series_uid=series_uid, instance=1,
                          description=FULL_SERIES, side=side, view=view, dicom_date=dicom_date, spacing_mm=spacing_mm)
            total_bytes += _write_dicom(ds, cbis_root / rel_folder / _file_name(patient, 1))
            files += 1
            series.append(_Series(subject, study_uid, series_uid, rel_folder, FULL_SERIES, [_file_name(patient, 1)], folder_date))
            image_csv = f"{subject}/{study_uid}/{series_uid}/000000.dcm"
            for abnormality, mask in zip(breast.abnormalities, rendered.masks):
                roi_subject = f"{subject}_{abnormality.id}"
                roi_study = _uid(seed, roi_subject, "study")
                mask_pixels = np.where(mask, 255, 0).astype(np.uint8)
                if abnormality.mismatched_mask:  # another scan of the film: other size and aspect ratio
                    h, w = mask_pixels.shape
                    mask_pixels = cv2.resize(mask_pixels, (int(w * 0.87), int(h * 0.82)), interpolation=cv2.INTER_NEAREST)
                ys, xs = _crop_box(mask, rendered.image.shape, margin=max(4, int(2.0 / pixel_mm)))
                crop = np.ascontiguousarray(rendered.image[ys, xs])
                roi_folder_base = Path(roi_subject) / _study_folder(patient, roi_subject, roi_study, roi_folder_date)
                if abnormality.separate_series:
                    crop_uid, mask_uid = _uid(seed, roi_subject, "crop"), _uid(seed, roi_subject, "mask")
                    placements = [(crop, crop_uid, CROP_SERIES, 1), (mask_pixels, mask_uid, MASK_SERIES, 1)]
                else:
                    crop_uid = mask_uid = _uid(seed, roi_subject, "roi")
                    placements = [(crop, crop_uid, MASK_SERIES, 1), (mask_pixels, mask_uid, MASK_SERIES, 2)]
                csv_paths = []
                for pixels, uid, description, instance in placements:
                    folder = roi_folder_base / _series_folder(patient, description, uid)
                    ds = _dataset(pixels, subject=roi_subject, study_uid=roi_study, series_uid=uid, instance=instance,
                                  description=description, side=side, view=view, dicom_date=roi_dicom_date,
                                  spacing_mm=spacing_mm)
                    total_bytes += _write_dicom(ds, cbis_root / folder / _file_name(patient, instance))
                    files += 1
                    known = next((s for s in series if s.series_uid == uid), None)
                    if known:
                        known.files.append(_file_name(patient, instance))
                    else:
                        series.append(_Series(roi_subject, roi_study, uid, folder, description, [_file_name(patient, instance)], roi_folder_date))
                    csv_paths.append(f"{roi_subject}/{roi_study}/{uid}/{instance - 1:06d}.dcm")
                crop_path, mask_path = csv_paths
                if abnormality.swap_columns:
                    crop_path, mask_path = mask_path, crop_path
                last = mask_path + ("\n" if abnormality.trailing_newline else "")
                lesion = abnormality.lesion
                row = {
                    "patient_id": patient.patient_id,
                    "breast_density": str(patient.density_written),
                    "breast density": str(patient.density_written),
                    "left or right breast": side_word,
                    "image view": view,
                    "abnormality id": str(abnormality.id),
                    "abnormality type": "mass" if lesion.kind == "mass" else "calcification",
                    "mass shape": lesion.shape,
                    "mass margins": lesion.margins,
                    "calc type": abnormality.calc_type_written,
                    "calc distribution": abnormality.calc_distribution_written,
                    "assessment": str(abnormality.assessment),
                    "pathology": abnormality.pathology,
                    "subtlety": str(abnormality.subtlety_written),
                    "image file path": image_csv,
                    "cropped image file path": crop_path,
                    "ROI mask file path": last,
                    "_subset": f"{'mass' if lesion.kind == 'mass' else 'calc'}_{patient.subsets[lesion.kind].lower()}",
                }
                rows.append(row)
    return rows, series, files, total_bytes


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
    os.replace(tmp, path)


def write_demo_dataset(
    out: str | Path,
    *,
    patients: int = 6,
    seed: int = 0,
    size: str = "full",
    metadata_csv: bool = True,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Write a synthetic CBIS-DDSM download under ``out`` (``out/CBIS-DDSM/...`` plus the CSVs in ``out``).
    ConfigError for a ``size`` or ``patients`` it cannot make (``bcir demo-data --patients 0``)."""
    if size not in PIXEL_MM:
        raise ConfigError("size", f"must be one of {sorted(PIXEL_MM)}")
    if patients < 1:
        raise ConfigError("patients", "must be at least 1")
    out = Path(out)
    cbis_root = out / "CBIS-DDSM"
    plans = plan_patients(patients, seed)
    workers = workers or min(len(plans), os.cpu_count() or 1, 4 if size == "full" else 2)
    jobs = [(p, cbis_root, PIXEL_MM[size], seed, size in SPACING_WRITTEN) for p in plans]
    results = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, result in enumerate(pool.map(_render_patient, jobs), 1):
                results.append(result)
                if progress:
                    progress(i, len(jobs))
    else:
        for i, job in enumerate(jobs, 1):
            results.append(_render_patient(job))
            if progress:
                progress(i, len(jobs))
    all_rows = [r for rows, _, _, _ in results for r in rows]
    all_series = [s for _, series, _, _ in results for s in series]
    files = sum(f for _, _, f, _ in results)
    total_bytes = sum(b for _, _, _, b in results)
    for subset, columns in (
        ("mass_train", MASS_COLUMNS), ("mass_test", MASS_COLUMNS), ("calc_train", CALC_COLUMNS), ("calc_test", CALC_COLUMNS),
    ):
        kind, part = subset.split("_")
        name = f"{kind}_case_description_{part}_set.csv"
        wanted = f"{kind}_{'training' if part == 'train' else 'test'}"
        _write_csv(out / name, columns, [r for r in all_rows if r["_subset"] == wanted])
    if metadata_csv:
        meta_rows = []
        for s in all_series:
            meta_rows.append({
                "Series UID": s.series_uid, "Collection": "CBIS-DDSM", "3rd Party Analysis": "NO",
                "Data Description URI": "https://doi.org/10.7937/K9/TCIA.2016.7O02S9CY", "Subject ID": s.subject,
                "Study UID": s.study_uid, "Study Description": "", "Study Date": s.date,
                "Series Description": s.description, "Manufacturer": "", "Modality": "MG",
                "SOP Class Name": "Secondary Capture Image Storage", "SOP Class UID": SecondaryCaptureImageStorage,
                "Number of Images": str(len(s.files)), "File Size": "", "File Location": f"./CBIS-DDSM/{s.folder.as_posix()}",
                "Download Timestamp": "",
            })
        _write_csv(out / "metadata.csv", METADATA_COLUMNS, meta_rows)
    malignant = sum(r["pathology"] == "MALIGNANT" for r in all_rows)
    return DemoSummary(out, len(plans), 4 * len(plans), len(all_rows), malignant, files, total_bytes)
