"""Every kind of DICOM object we write (model/pacs/results.py: the SEG and the TID 1500 Comprehensive 3D SR of the
AI's result on a view; model/pacs/read_report.py: the TID 1500 SRs of a reader's committed read), checked by dciodvfy
from David Clunie's dicom3tools (Debian's ``dicom3tools``): it reports no error. The demo source image they refer to
is checked too: its only errors are the CBIS-DDSM quirk its writer keeps on purpose.
Never a skip: where dciodvfy is not installed the tests fail with the line that installs it. Run with ``-s`` to see
each object's warnings, counted by message (values masked)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest

from model.data.study_index import build_index
from model.infer.predictor import InferenceConfig, Predictor
from model.pacs.read_report import write_read_reports
from model.pacs.results import segmentation, write_results
from model.reading.transfer import image_key
from tests.model.pacs.test_read_report import a_read

INSTALL_LINE = ("dciodvfy is not installed, so the DICOM validation tests cannot run: apt-get install dicom3tools "
                "(.ci/run does it)")
KINDS = {"SEG", "SR", "read SR"}  # what we write; a new kind is added here, and so gets validated


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """dciodvfy's error lines and warning lines for one file (its exit status says nothing: 0 with errors on SRs)."""
    binary = shutil.which("dciodvfy")
    if binary is None:
        pytest.fail(INSTALL_LINE, pytrace=False)
    run = subprocess.run([binary, str(path)], capture_output=True, text=True, timeout=300)
    lines = [line.strip() for line in (run.stdout + run.stderr).splitlines()]
    return [line for line in lines if line.startswith("Error")], [line for line in lines if line.startswith("Warning")]


def summary(kind: str, errors: list[str], warnings: list[str]) -> str:
    """Counts by message, each value dciodvfy quotes (``= <...>``: a name, a UID) masked."""
    counts = Counter(re.sub(r"= <[^>]*>", "= <value>", line) for line in errors + warnings)
    return "\n".join([f"dciodvfy {kind}: {len(errors)} errors, {len(warnings)} warnings",
                      *(f"  {n} x {message}" for message, n in sorted(counts.items()))])


@pytest.fixture(scope="module")
def written(tmp_path_factory, disc_model) -> tuple[Path, dict[str, list[Path]]]:
    """The demo archive's full mammograms (tests/orthanc.archive_with_demo writes the same); the objects `bcir export`
    writes (write_results on the predictor's result) for the first CC view with a listed lesion; and the SRs of
    tests/model/pacs/test_read_report.py's read of the first patient with both CC views: (that view's file, kind ->
    files)."""
    from model.data.synth.cbis_writer import write_demo_dataset

    folder = tmp_path_factory.mktemp("validation")
    write_demo_dataset(folder / "demo", patients=2, seed=5, size="small", workers=1)
    sources = sorted(p for p in (folder / "demo").rglob("*.dcm") if "full mammogram" in p.as_posix())
    predictor = Predictor(disc_model, "cpu", config=InferenceConfig())
    for source in (p for p in sources if "_CC/" in p.as_posix()):
        objects = write_results(source, predictor.predict(str(source)), disc_model.threshold, folder / "results",
                                model_name=disc_model.card.name)
        if objects:
            break
    else:
        pytest.fail("no demo CC view lists a lesion: there is no SEG or SR to validate", pytrace=False)
    kinds: dict[str, list[Path]] = {}
    for obj in objects:
        kinds.setdefault(obj.path.name.split("_")[0], []).append(obj.path)
    index = build_index(folder / "demo", workers=1)
    cases = [{image_key(i, index.root): Path(i.path) for i in images} for _, images in sorted(index.patients().items())]
    keys = next((k for k in cases if {"LCC", "RCC"} <= {key.split(":")[0] for key in k}), None)
    if keys is None:
        pytest.fail("no demo patient has both CC views: there is no read to report", pytrace=False)
    kinds["read SR"] = [o.path for o in write_read_reports(a_read(keys), "Jane Smith", keys, folder / "reads")]
    return source, kinds


def test_every_kind_of_object_we_write_passes_dciodvfy_without_errors(written):
    _, objects = written
    assert set(objects) == KINDS and all(objects.values())
    errors_by_kind = {}
    for kind, paths in sorted(objects.items()):
        errors, warnings = [], []
        for path in paths:
            found = dciodvfy(path)
            errors += found[0]
            warnings += found[1]
        print(summary(f"{kind} ({len(paths)} file{'s' if len(paths) > 1 else ''})", errors, warnings))
        errors_by_kind[kind] = errors
    assert errors_by_kind == {kind: [] for kind in KINDS}


def test_a_seg_keeps_a_valid_patient_orientation_of_its_source_and_passes_dciodvfy(written, tmp_path):
    source_path, _ = written
    source = pydicom.dcmread(source_path)
    source.PatientOrientation = ["A", "FR"]  # a valid value: two directions, the second of two letters
    labels = np.zeros((source.Rows, source.Columns), np.uint8)
    labels[4:12, 6:16] = 1
    seg = segmentation(source, labels, [0.9], model_name="m", model_version="v")
    assert list(seg.PatientOrientation) == ["A", "FR"]
    seg.save_as(tmp_path / "seg.dcm")
    errors, warnings = dciodvfy(tmp_path / "seg.dcm")
    print(summary("SEG of an image with a valid Patient Orientation", errors, warnings))
    assert errors == []


def test_the_demo_source_image_has_no_error_but_the_view_kept_in_patient_orientation(written):
    """CBIS-DDSM writes the view ("CC", "MLO") in Patient Orientation, which model/data/dicom_fields.py reads; the demo
    writer keeps that on purpose, and dciodvfy reports it. Anything else it reports is a defect of the writer."""
    source, _ = written
    errors, warnings = dciodvfy(source)
    print(summary("demo source image (full mammogram)", errors, warnings))
    assert [e for e in errors if "PatientOrientation" not in e] == []
