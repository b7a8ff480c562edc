"""The AI's result on one view as DICOM a PACS files with the study: a Segmentation (highdicom) with one segment per
listed lesion, the algorithm named by the model's name and version.

The SEG belongs to the source study: the same Study Instance UID and patient module (highdicom copies them from the
source image), a new series, and a reference to the source image. Its segments are exactly the lesions the reader
sees in yellow and the findings list (``ImageResult.lesion_labels``), most confident first, each labelled with its
p(malignant). A view with no listed lesion gets no SEG (an empty segmentation files nothing a viewer can show).

Two things highdicom (0.28) leaves non-conformant, as dciodvfy reports (tests/model/pacs/test_validation.py):
a SEG of a projection image (no Frame of Reference) lacks Patient Orientation, Type 2C in its General Image module,
so it gets the source's (its frames are the source's pixel grid), empty when the source's is not a valid one
(CBIS-DDSM keeps the view there); and ``hd.sr.ReferencedSegmentationFrame`` names both the frame and the segment,
which the Image SOP Instance Reference macro forbids together, so the SR's reference names the frame alone (the
frame holds one segment), built with highdicom's ``from_sequence``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from model.errors import DataError
from model.fileio import atomic_write_bytes

SEG_SERIES_NUMBER = 9701  # numbers the site's viewers sort after the images
SR_SERIES_NUMBER = 9702
MANUFACTURER = "B-Cir Review"


@dataclass(frozen=True)
class ResultObject:
    path: Path
    sop_instance_uid: str
    series_instance_uid: str
    segments: int


def _algorithm(model_name: str, model_version: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.AlgorithmIdentificationSequence(name=model_name[:64] or "B-Cir U-Net", version=model_version[:64],
                                              family=codes.cid7162.ArtificialIntelligence)


def segmentation(source: Dataset, labels: np.ndarray, p_malignant: list[float], *, model_name: str,
                 model_version: str, series_uid: str | None = None):
    """A highdicom Segmentation of ``source``: segment ``n`` is where ``labels == n`` (n = 1 .. len(p_malignant)).
    DataError when the labels do not fit the source image or name no lesion."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    labels = np.asarray(labels)
    if labels.shape != (int(source.Rows), int(source.Columns)):
        raise DataError(f"the lesion labels are {labels.shape[1]}x{labels.shape[0]}, the image "
                        f"{source.Columns}x{source.Rows}")
    count = len(p_malignant)
    if count == 0:
        raise DataError("no lesion is listed on this view: there is nothing to segment")
    algorithm = _algorithm(model_name, model_version)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=f"Lesion {n}: p(malignant) {p:.2f}",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm,
            tracking_uid=hd.UID(), tracking_id=f"lesion {n}")
        for n, p in enumerate(p_malignant, 1)]
    masks = np.stack([labels == n for n in range(1, count + 1)], axis=-1)[None]  # (1 frame, rows, cols, segments)
    with warnings.catch_warnings():  # CBIS-DDSM's names ("Calc-Test_P_00009_LEFT_CC") are single-component PNs
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        seg = _segmentation(hd, source, masks, descriptions, series_uid, model_name, model_version)
    if "PatientOrientation" not in seg and "FrameOfReferenceUID" not in seg:
        seg.PatientOrientation = _patient_orientation(hd, source)
    return seg


def _patient_orientation(hd, source: Dataset) -> list[str]:
    """The source's Patient Orientation when it is two directions of letters A, P, R, L, H, F (e.g. ``A\\FR``); []
    (empty: unknown) otherwise, e.g. CBIS-DDSM's view name ``CC`` there."""
    letters = {v.value for v in hd.PatientOrientationValuesBiped}
    value = source.get("PatientOrientation")
    values = [str(v) for v in value] if isinstance(value, MultiValue) else ([str(value)] if value else [])
    if len(values) == 2 and all(v and set(v) <= letters for v in values):
        return values
    return []


def _segmentation(hd, source, masks, descriptions, series_uid, model_name, model_version):
    return hd.seg.Segmentation(
        source_images=[source], pixel_array=masks, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=series_uid or hd.UID(),
        series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=model_name[:64] or "B-Cir U-Net", software_versions=model_version[:64],
        device_serial_number="none", series_description=f"AI lesions ({model_version[:40]})"[:64])


def measurement_report(source: Dataset, seg, lesions, case_score: float, laterality: str | None, *, model_name: str,
                       model_version: str):
    """A TID 1500 Comprehensive 3D SR (highdicom) of one view: per lesion, its tracking UID (the SEG segment's),
    the segment as its region, p(malignant), the longest diameter in mm when the spacing is known, and the breast's
    laterality; and the view's case score. In the source study, a new series."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.sr.AlgorithmIdentification(name=model_name[:64] or "B-Cir U-Net", version=model_version[:64])
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=MANUFACTURER, model_name=model_name[:64] or "B-Cir U-Net"))
    side = {"L": codes.SCT.Left, "R": codes.SCT.Right}.get(laterality or "")
    site = hd.sr.FindingSite(anatomic_location=codes.SCT.Breast, laterality=side)
    source_image = hd.sr.SourceImageForSegmentation.from_source_image(source)
    frames = _segment_frames(seg)
    groups = []
    for n, (lesion, segment) in enumerate(zip(lesions, seg.SegmentSequence), 1):
        measurements = [hd.sr.Measurement(name=codes.DCM.ProbabilityOfCancer, value=float(lesion.p_malignant),
                                          unit=codes.UCUM.NoUnits, algorithm_id=algorithm)]
        if lesion.longest_diameter_mm is not None:
            measurements.append(hd.sr.Measurement(name=codes.SCT.Diameter, value=float(lesion.longest_diameter_mm),
                                                  unit=codes.UCUM.Millimeter, algorithm_id=algorithm))
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=segment.TrackingUID, identifier=f"lesion {n}"),
            referenced_segment=_segmentation_frame(hd, codes, seg, frames[n], source_image),
            finding_type=codes.SCT.Lesion, finding_sites=[site], measurements=measurements, algorithm_id=algorithm))
    groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="case score"),
        referenced_real_world_value_map=None, finding_type=codes.SCT.Breast, finding_sites=[site],
        measurements=[hd.sr.Measurement(name=codes.DCM.ProbabilityOfCancer, value=float(case_score),
                                        unit=codes.UCUM.NoUnits, algorithm_id=algorithm)],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)], algorithm_id=algorithm))
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=observer),
                                     procedure_reported=codes.SCT.Mammography, imaging_measurements=groups)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        return hd.sr.Comprehensive3DSR(
            evidence=[source, seg], content=report, series_number=SR_SERIES_NUMBER, series_instance_uid=hd.UID(),
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
            series_description=f"AI findings ({model_version[:40]})"[:64])


def _segmentation_frame(hd, codes, seg, frame: int, source_image):
    """TID 1410's Referenced Segmentation Frame naming the frame alone: Referenced Frame Number and Referenced
    Segment Number are each required only when the other is absent, and highdicom's constructor writes both."""
    reference = hd.sr.ImageContentItem(
        name=codes.DCM.ReferencedSegmentationFrame, referenced_sop_class_uid=seg.SOPClassUID,
        referenced_sop_instance_uid=seg.SOPInstanceUID, referenced_frame_numbers=frame,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    return hd.sr.ReferencedSegmentationFrame.from_sequence([reference, source_image])


def _segment_frames(seg) -> dict[int, int]:
    """Segment number -> the frame that holds it (the per-frame groups name it, or the shared group when every frame
    is of one segment)."""
    shared = seg.SharedFunctionalGroupsSequence[0].get("SegmentIdentificationSequence")
    frames: dict[int, int] = {}
    for n, item in enumerate(seg.PerFrameFunctionalGroupsSequence, 1):
        identification = item.get("SegmentIdentificationSequence") or shared
        frames.setdefault(int(identification[0].ReferencedSegmentNumber), n)
    return frames


def write_results(source_path: str | Path, result, threshold: float, out_dir: str | Path, *, model_name: str,
                  seg: bool = True, sr: bool = True) -> list[ResultObject]:
    """The SEG and the SR of one inferred view, written atomically into ``out_dir``; [] when it lists no lesion
    (the SR refers to the SEG's segments, so an SR alone still makes its SEG first, kept only in memory)."""
    if not result.lesions or not (seg or sr):
        return []
    source = pydicom.dcmread(source_path)
    segmentation_object = segmentation(source, result.lesion_labels(threshold), [l.p_malignant for l in result.lesions],
                                       model_name=model_name, model_version=result.model_version)
    written = []
    if seg:
        written.append(_write(segmentation_object, Path(out_dir) / f"SEG_{segmentation_object.SOPInstanceUID}.dcm",
                              len(result.lesions)))
    if sr:
        report = measurement_report(source, segmentation_object, result.lesions, result.case_score, result.laterality,
                                    model_name=model_name, model_version=result.model_version)
        written.append(_write(report, Path(out_dir) / f"SR_{report.SOPInstanceUID}.dcm", len(result.lesions)))
    return written


def _write(dataset, path: Path, segments: int) -> ResultObject:
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return ResultObject(path, str(dataset.SOPInstanceUID), str(dataset.SeriesInstanceUID), segments)


__all__ = ["ResultObject", "SEG_SERIES_NUMBER", "SR_SERIES_NUMBER", "measurement_report", "segmentation",
           "write_results"]
