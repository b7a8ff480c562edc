"""A reader's committed read as TID 1500 SRs (model.pacs.read_report): one per study of the case, each breast's
outcome, score and density, each mark as a region on the image it was placed on, the finding's place and size; read
back with highdicom, and filed by the real Orthanc in the image's study."""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from model.data.study_index import build_index
from model.errors import DataError
from model.pacs.archive import Archive, ArchiveProfile
from model.pacs.read_report import PRIVATE_SCHEME, READ_SR_SERIES_NUMBER, read_reports, write_read_reports
from model.reading.reads import BreastRead, Finding, Mark, Read
from model.reading.transfer import image_key


@pytest.fixture(scope="module")
def case(pacs):
    """The first demo patient with both CC views: its image keys -> paths."""
    _, _, files = pacs
    index = build_index(files[0].parents[4], workers=1)
    for _patient, images in sorted(index.patients().items()):
        keys = {image_key(i, index.root): Path(i.path) for i in images}
        if {"LCC", "RCC"} <= {k.split(":")[0] for k in keys}:
            return keys
    pytest.fail("no demo patient has both CC views")


def a_read(keys: dict[str, Path], *, committed: str | None = "2026-12-01T09:30:05Z") -> Read:
    lcc = next(k for k in keys if k.startswith("LCC:"))
    outline = Mark(lcc, "LCC", ((100.0, 120.0), (140.0, 118.0), (150.0, 160.0), (104.0, 170.0)))
    point = Mark(lcc, "LCC", ((300.5, 210.25),))
    mass = Finding("ill-defined mass", ("LCC",), (outline,), descriptors={"mass_shape": "irregular"}, clock_hour=2,
                   depth="middle", nipple_distance_mm=61.5, size_mm=14.0)
    calcs = Finding("microcalcification", ("LCC",), (point,), clock_hour=11, depth="posterior")
    left = BreastRead("L", "assessment", "4B", "birads", "c", (mass, calcs))
    right = BreastRead("R", "technical", "1", "birads", "b", technical_view="RCC",
                       technical_reason="motion blur")
    return Read("P_CASE", "JS", (left, right), opened_at="2026-12-01T09:29:00Z", committed_at=committed)


def headers(keys: dict[str, Path]) -> dict[str, pydicom.Dataset]:
    return {k: pydicom.dcmread(p, stop_before_pixels=True) for k, p in keys.items()}


def evaluations(group) -> dict[str, hd.sr.CodedConcept]:
    return {item.name.meaning: item.value for item in group.get_qualitative_evaluations()}


def test_a_read_becomes_one_sr_per_study_with_its_breasts_marks_and_places(case):
    images = headers(case)
    read = a_read(case)
    reports = read_reports(read, "Jane Smith", images)
    studies = {str(h.StudyInstanceUID) for h in images.values()}
    assert len(reports) == len(studies)  # CBIS-DDSM: each view is a study of its own
    lcc_key = next(k for k in case if k.startswith("LCC:"))
    lcc = images[lcc_key]
    for sr in reports:
        sr = hd.sr.Comprehensive3DSR.from_dataset(sr)
        own = [h for h in images.values() if h.StudyInstanceUID == sr.StudyInstanceUID]
        assert own and sr.PatientID == own[0].PatientID and sr.SeriesNumber == READ_SR_SERIES_NUMBER
        assert sr.ContentDate == "20261201" and sr.ContentTime == "093005"
        observer = [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121008"]
        assert observer and observer[0].PersonName == "Jane Smith^"  # one component
        groups = sr.content.get_image_measurement_groups() + sr.content.get_planar_roi_measurement_groups()
        breast_groups = [g for g in groups if g.finding_type == codes.SCT.Breast]
        sides = {g.finding_sites[0].laterality for g in breast_groups}
        assert len(breast_groups) == 1  # each of these studies images one breast
        (breast,) = breast_groups
        if sides == {codes.SCT.Left}:
            assert evaluations(breast)["Recommended Follow-up"] == codes.DCM.RecallForImagingFindings
            score = evaluations(breast)["Assessment Category"]
            assert (score.scheme_designator, score.meaning) == (PRIVATE_SCHEME, "BI-RADS category 4B")
            assert evaluations(breast)["Breast composition"] == codes.cid6001.HeterogeneouslyDense
        else:
            assert evaluations(breast)["Recommended Follow-up"] == codes.DCM.RecallForTechnicalReasons
            assert evaluations(breast)["Assessment Category"].value == "397140005"  # BI-RADS 1, SNOMED CT
            assert evaluations(breast)["View to retake"].meaning == "RCC"
        regions = sr.content.get_planar_roi_measurement_groups()
        if sr.StudyInstanceUID != lcc.StudyInstanceUID:
            assert regions == []  # the marks are all on the LCC image
            continue
        assert len(regions) == 2 and len({str(g.tracking_uid) for g in groups}) == len(groups)
        mass, calcs = regions
        assert mass.finding_type == codes.cid6016.MammographicBreastMass
        assert mass.roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        drawn = mass.roi.value
        assert np.allclose(drawn[:-1], [p for p in read.breasts[0].findings[0].marks[0].points])
        assert np.allclose(drawn[-1], drawn[0])  # a closed outline
        assert mass.roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == lcc.SOPInstanceUID
        assert evaluations(mass)["Clockface or region"] == codes.SCT._2OClockPosition
        assert evaluations(mass)["Margins"] == codes.SCT.PoorlyDefined
        assert evaluations(mass)["Mass shape"].meaning == "irregular"
        (size,) = mass.get_measurements(name=codes.SCT.Diameter)
        (nipple,) = mass.get_measurements(name=codes.DCM.DistanceFromNipple)
        assert (size.value, nipple.value, size.unit) == (14.0, 61.5, codes.UCUM.Millimeter)
        assert calcs.roi.graphic_type == hd.sr.GraphicTypeValues.POINT
        assert np.allclose(calcs.roi.value, [[300.5, 210.25]])
        assert evaluations(calcs)["Depth"] == codes.SCT.Posterior


def test_only_a_committed_read_on_the_cases_own_images_is_reported(case):
    images = headers(case)
    with pytest.raises(DataError, match="not committed"):
        read_reports(a_read(case, committed=None), "Jane Smith", images)
    without_lcc = {k: v for k, v in images.items() if not k.startswith("LCC:")}
    with pytest.raises(DataError, match="an image the case does not have"):
        read_reports(a_read(case), "Jane Smith", without_lcc)


def test_the_archive_files_the_read_in_the_images_study(pacs, case, tmp_path):
    orthanc, _, _ = pacs
    written = write_read_reports(a_read(case), "Jane Smith", case, tmp_path / "out")
    assert [w.path.parent for w in written] == [tmp_path / "out"] * len(written)
    assert {w.segments for w in written} <= {1, 3}  # a breast; or a breast and its two marked findings
    stored = Archive(ArchiveProfile(orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)).send([w.path for w in written])
    assert stored == [w.sop_instance_uid for w in written]
    for key, path in case.items():
        study = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
        found = next(f for f in orthanc.post("/tools/lookup", study.encode(), "text/plain") if f["Type"] == "Study")
        series = orthanc.get(f"/studies/{found['ID']}/series")
        descriptions = {s["MainDicomTags"].get("SeriesDescription") for s in series
                        if s["MainDicomTags"]["Modality"] == "SR"}
        assert "Screening read (JS)" in descriptions, key


def test_bcir_reads_sr_writes_a_readers_committed_reads_for_the_pacs(pacs, tmp_path):
    from tests.model.cli.test_cli_reads import bcir, read_rows, write_reads

    orthanc, _, files = pacs
    root = files[0].parents[4]
    db = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    bcir(tmp_path, db, "readers", "add", "AA", "Dr A")
    bcir(tmp_path, db, "reads", "add-cases", str(root))
    cases = [i["case_id"] for i in json.loads(bcir(tmp_path, db, "reads", "worklist", "--reader", "AA", "--role",
                                                   "first", "--json").stdout)["first"]["items"]]
    bcir(tmp_path, db, "reads", "import", str(write_reads(tmp_path / "a.csv", read_rows(cases[0], "AA", "assessment"))))
    out = bcir(tmp_path, db, "reads", "sr", *cases[:2], "--reader", "AA", "--folder", str(root), "--out",
               str(tmp_path / "sr"), "--json", check=False)
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["problems"] == [f"{cases[1]}: AA has no committed read of it"]
    written = report["written"]
    index = build_index(root, workers=1)
    studies = {pydicom.dcmread(i.path, stop_before_pixels=True).StudyInstanceUID for i in index.patients()[cases[0]]}
    assert {w["case_id"] for w in written} == {cases[0]} and len(written) == len(studies)
    for item in written:
        sr = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(item["path"]))
        assert sr.StudyInstanceUID in studies and item["groups"] == 1  # the breast this study images
        (breast,) = sr.content.get_image_measurement_groups()
        side = breast.finding_sites[0].laterality
        expected = codes.DCM.RecallForImagingFindings if side == codes.SCT.Left else codes.DCM.NormalIntervalFollowUp
        assert evaluations(breast)["Recommended Follow-up"] == expected
    peer = ["--ae", orthanc.ae_title, "--host", "127.0.0.1", "--port", str(orthanc.dicom_port)]
    sent = bcir(tmp_path, db, "pacs", "send", *peer, *[w["path"] for w in written])
    assert sent.stdout.startswith(f"{len(written)} objects stored by ORTHANC")
