"""A reader's committed screening read as DICOM: TID 1500 Comprehensive 3D SRs (highdicom) the PACS files with the
study, one per study the case's images belong to (a screening exam is one study; CBIS-DDSM ships each view as a
study of its own).

Each SR holds, for each breast imaged in its study, one group with the read's outcome (recall for imaging findings,
for technical reasons, for clinical findings, or normal interval follow-up), the score on the site's scale and the
density; and for each finding, one group per mark the reader placed on an image of that study (a point, or a closed
outline, in the image's pixels), with the abnormality type, the clock face position, the depth, the distance from
the nipple and the size. A finding seen on views of the study but not marked there is a group without a region.
The reader (their name, and their code as the login) is the observer; the read's commit time is the content time.

Codes: DICOM (DCM) and SNOMED CT (SCT) where the standard has them (pydicom's code dictionary); the values with no
code we could verify here (BI-RADS 4A, 4B, 4C and 6, the RCR 5-point scale, the middle third, the technical view,
BI-RADS descriptors) use the private scheme ``99BCIR`` with their meaning spelled out. The technical recall's reason
(free text) stays in the reading database: a TID 1501 group has no place for text.
"""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from model.errors import DataError
from model.fileio import atomic_write_bytes
from model.pacs.results import MANUFACTURER, ResultObject

READ_SR_SERIES_NUMBER = 9703  # after the AI's SEG (9701) and SR (9702)
PRIVATE_SCHEME = "99BCIR"

# SNOMED CT "Mammography assessment (Category N)" concepts; the rest of the BI-RADS scale is private (see above)
_BIRADS_SCT = {
    "0": ("397138000", "Mammography assessment (Category 0) - Need additional imaging evaluation"),
    "1": ("397140005", "Mammography assessment (Category 1) - Negative"),
    "2": ("397141009", "Mammography assessment (Category 2) - Benign finding"),
    "3": ("397143007", "Mammography assessment (Category 3) - Probably benign finding"),
    "4": ("397144001", "Mammography assessment (Category 4) - Suspicious abnormality"),
    "5": ("397145000", "Mammography assessment (Category 5) - Highly suggestive of malignancy"),
}
_RCR_MEANING = {"1": "normal", "2": "benign", "3": "indeterminate", "4": "suspicious", "5": "highly suspicious"}


@dataclass(frozen=True)
class _Codes:
    """The code of each word a read uses (built on first use: pydicom's dictionary and highdicom load lazily)."""

    outcome: dict
    density: dict
    abnormality: dict
    margin: dict
    depth: dict


def _private(value: str, meaning: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value[:16], scheme_designator=PRIVATE_SCHEME, meaning=meaning[:64])


def _codes() -> _Codes:
    from pydicom.sr.codedict import codes

    return _Codes(
        outcome={"routine": codes.DCM.NormalIntervalFollowUp, "assessment": codes.DCM.RecallForImagingFindings,
                 "technical": codes.DCM.RecallForTechnicalReasons,
                 "clinical": codes.DCM.RecallForPatientSymptomsClinicalFindings},
        density={"a": codes.cid6001.AlmostEntirelyFat, "b": codes.cid6001.ScatteredFibroglandularDensities,
                 "c": codes.cid6001.HeterogeneouslyDense, "d": codes.cid6001.ExtremelyDense},
        abnormality={"well-defined mass": codes.cid6016.MammographicBreastMass,
                     "ill-defined mass": codes.cid6016.MammographicBreastMass,
                     "microcalcification": codes.SCT.MicrocalcificationsOfTheBreast,
                     "architectural distortion": codes.SCT.ArchitecturalDistortionOfBreast,
                     "asymmetric density": codes.SCT.AsymmetricBreastTissue,
                     "lymph node": codes.SCT.IntramammaryLymphNode, "other": codes.SCT.Finding},
        margin={"well-defined mass": codes.SCT.WellDefined, "ill-defined mass": codes.SCT.PoorlyDefined},
        depth={"anterior": codes.SCT.Anterior, "middle": _private("depth-middle", "Middle third"),
               "posterior": codes.SCT.Posterior},
    )


def _score(scale: str, score: str):
    from pydicom.sr.coding import Code

    if scale == "birads" and score in _BIRADS_SCT:
        value, meaning = _BIRADS_SCT[score]
        return Code(value, "SCT", meaning)
    if scale == "birads":
        return _private(f"birads-{score}", f"BI-RADS category {score}")
    return _private(f"rcr-{score}", f"RCR {score} {_RCR_MEANING.get(score, '')}".strip())


def _clock(hour: int):
    from pydicom.sr.codedict import codes

    return getattr(codes.SCT, f"_{hour}OClockPosition")


def _breast_site(side: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.sr.FindingSite(anatomic_location=codes.SCT.Breast,
                             laterality={"L": codes.SCT.Left, "R": codes.SCT.Right}[side])


def _breast_group(breast, images: list[Dataset], known: _Codes):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    evaluations = [hd.sr.QualitativeEvaluation(codes.DCM.RecommendedFollowUp, known.outcome[breast.outcome]),
                   hd.sr.QualitativeEvaluation(codes.DCM.AssessmentCategory, _score(breast.scale, breast.score))]
    if breast.density is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(codes.DCM.BreastComposition, known.density[breast.density]))
    if breast.technical_view is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(_private("retake-view", "View to retake"),
                                                       _private(breast.technical_view, breast.technical_view)))
    name = {"L": "left", "R": "right"}[breast.side]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"{name} breast"),
        finding_type=codes.SCT.Breast, finding_sites=[_breast_site(breast.side)], qualitative_evaluations=evaluations,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds) for ds in images])


def _finding_parts(finding, known: _Codes):
    """The finding's measurements and qualitative evaluations (the same on each of its groups)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    measurements = []
    if finding.size_mm is not None:
        measurements.append(hd.sr.Measurement(name=codes.SCT.Diameter, value=float(finding.size_mm),
                                              unit=codes.UCUM.Millimeter))
    if finding.nipple_distance_mm is not None:
        measurements.append(hd.sr.Measurement(name=codes.DCM.DistanceFromNipple,
                                              value=float(finding.nipple_distance_mm), unit=codes.UCUM.Millimeter))
    evaluations = []
    if finding.abnormality in known.margin:
        evaluations.append(hd.sr.QualitativeEvaluation(codes.DCM.Margins, known.margin[finding.abnormality]))
    if finding.clock_hour is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(codes.DCM.ClockfaceOrRegion, _clock(finding.clock_hour)))
    if finding.depth is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(codes.DCM.Depth, known.depth[finding.depth]))
    for key, value in sorted(finding.descriptors.items()):
        evaluations.append(hd.sr.QualitativeEvaluation(
            _private(key.replace("_", "-"), key.replace("_", " ").capitalize()),
            _private(f"d{zlib.crc32(value.encode('utf-8')):08x}", value)))  # stable, unlike hash()
    return measurements, evaluations


def _finding_groups(side: str, number: int, finding, images: Mapping[str, Dataset], views_here: dict[str, Dataset],
                    known: _Codes) -> list:
    import highdicom as hd

    measurements, evaluations = _finding_parts(finding, known)
    common = dict(finding_type=known.abnormality[finding.abnormality], finding_sites=[_breast_site(side)],
                  measurements=measurements or None, qualitative_evaluations=evaluations or None)
    name = {"L": "left", "R": "right"}[side]
    groups = []
    for mark in finding.marks:
        source = images.get(mark.image)
        if source is None:
            continue  # a mark on an image of another study: that study's SR holds it
        points = np.array(mark.points + ((mark.points[0],) if mark.is_outline else ()), dtype=float)
        region = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE if mark.is_outline else
                                   hd.sr.GraphicTypeValues.POINT, graphic_data=points,
                                   source_image=hd.sr.SourceImageForRegion.from_source_image(source))
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(),
                                                         identifier=f"{name} finding {number} on {mark.view}"),
            referenced_region=region, **common))
    unmarked = [views_here[v] for v in finding.views if v in views_here
                and not any(m.view == v and m.image in images for m in finding.marks)]
    if unmarked:
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"{name} finding {number}"),
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds) for ds in unmarked], **common))
    return groups


def _person_name(name: str) -> str:
    """A reader's name as a DICOM person name: the site's list holds it as typed ("Jane Smith"), so it goes as one
    component, which a trailing caret says is meant (DICOM PS3.5 6.2.1.2)."""
    name = name.strip()[:60]
    return name if "^" in name else name + "^"


def read_reports(read, reader_name: str, images: Mapping[str, Dataset]) -> list:
    """The SRs of a committed ``read``: one per study of ``images`` (image key -> the image's header, as the case
    names its images: model.reading.transfer.image_key). DataError when the read is not committed or names an image
    the case does not have."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    if read.committed_at is None:
        raise DataError(f"the read of case {read.case_id} is not committed: only a committed read is reported")
    if not images:
        raise DataError(f"case {read.case_id} has no DICOM image to report on")
    for breast in read.breasts:
        for finding in breast.findings:
            for mark in finding.marks:
                if mark.image not in images:
                    raise DataError(f"a mark of case {read.case_id} is on an image the case does not have")
    known = _codes()
    studies: dict[str, dict[str, Dataset]] = {}
    for key, header in images.items():
        studies.setdefault(str(header.StudyInstanceUID), {})[key] = header
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_person_name(reader_name or read.reader),
                                                                                  login_name=read.reader))
    when = read.committed_at.replace("-", "").replace(":", "").replace("T", "")[:14]
    reports = []
    for study_images in studies.values():
        views_here = {key.split(":", 1)[0]: header for key, header in study_images.items()}
        groups = []
        for breast in read.breasts:
            own = [header for view, header in views_here.items() if view.startswith(breast.side)]
            if not own:
                continue
            groups.append(_breast_group(breast, own, known))
            for number, finding in enumerate(breast.findings, 1):
                groups.extend(_finding_groups(breast.side, number, finding, study_images, views_here, known))
        report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_person_context=observer),
                                         procedure_reported=codes.SCT.Mammography, imaging_measurements=groups)
        with warnings.catch_warnings():  # CBIS-DDSM's names ("Calc-Test_P_00009_LEFT_CC") are single-component PNs
            warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
            sr = hd.sr.Comprehensive3DSR(
                evidence=list(study_images.values()), content=report, series_number=READ_SR_SERIES_NUMBER,
                series_instance_uid=hd.UID(), sop_instance_uid=hd.UID(), instance_number=1,
                manufacturer=MANUFACTURER, is_complete=True,
                series_description=f"Screening read ({read.reader})"[:64])
        sr.ContentDate, sr.ContentTime = when[:8], when[8:14]
        reports.append(sr)
    return reports


def write_read_reports(read, reader_name: str, image_paths: Mapping[str, str | Path], out_dir: str | Path
                       ) -> list[ResultObject]:
    """The SRs of a committed read, written atomically into ``out_dir`` (``image_paths``: image key -> DICOM file).
    An image that is not DICOM (a PNG folder) cannot be referenced: DataError with one line."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers = {}
    for key, path in image_paths.items():
        try:
            headers[key] = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError) as exc:
            raise DataError(f"{Path(path).name} cannot be referenced in a DICOM report ({type(exc).__name__})") from None
    written = []
    for report in read_reports(read, reader_name, headers):
        buffer = io.BytesIO()
        report.save_as(buffer)
        path = Path(out_dir) / f"SR_read_{report.SOPInstanceUID}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
        written.append(ResultObject(path, str(report.SOPInstanceUID), str(report.SeriesInstanceUID),
                                    _groups(report)))
    return written


def _groups(report) -> int:
    """How many measurement groups (breasts and findings) a report holds: the Measurement Group containers (DCM
    125007) under its Imaging Measurements container (DCM 126010)."""
    def named(item, code: str) -> bool:
        return any(c.CodeValue == code for c in item.get("ConceptNameCodeSequence", []))

    return sum(1 for container in report.ContentSequence if named(container, "126010")
               for item in container.get("ContentSequence", []) if named(item, "125007"))


__all__ = ["PRIVATE_SCHEME", "READ_SR_SERIES_NUMBER", "read_reports", "write_read_reports"]
