"""The AI's result on one view as DICOM a PACS files with the study: a Segmentation (highdicom) with one segment per
listed lesion, the algorithm named by the model's name and version.

The SEG belongs to the source study: the same Study Instance UID and patient module (highdicom copies them from the
source image), a new series, and a reference to the source image. Its segments are exactly the lesions the reader
sees in yellow and the findings list (``ImageResult.lesion_labels``), most confident first, each labelled with its
p(malignant). A view with no listed lesion gets no SEG (an empty segmentation files nothing a viewer can show).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from model.errors import DataError
from model.fileio import atomic_write_bytes

SEG_SERIES_NUMBER = 9701  # a number the site's viewers sort after the images
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
        return _segmentation(hd, source, masks, descriptions, series_uid, model_name, model_version)


def _segmentation(hd, source, masks, descriptions, series_uid, model_name, model_version):
    return hd.seg.Segmentation(
        source_images=[source], pixel_array=masks, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=series_uid or hd.UID(),
        series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=model_name[:64] or "B-Cir U-Net", software_versions=model_version[:64],
        device_serial_number="none", series_description=f"AI lesions ({model_version[:40]})"[:64])


def write_segmentation(source_path: str | Path, result, threshold: float, out_dir: str | Path, *,
                       model_name: str, series_uid: str | None = None) -> ResultObject | None:
    """The SEG of one inferred view, written atomically into ``out_dir``; None when the view lists no lesion."""
    if not result.lesions:
        return None
    source = pydicom.dcmread(source_path)
    seg = segmentation(source, result.lesion_labels(threshold), [l.p_malignant for l in result.lesions],
                       model_name=model_name, model_version=result.model_version, series_uid=series_uid)
    buffer = io.BytesIO()
    seg.save_as(buffer)
    path = Path(out_dir) / f"SEG_{seg.SOPInstanceUID}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return ResultObject(path, str(seg.SOPInstanceUID), str(seg.SeriesInstanceUID), len(result.lesions))


__all__ = ["ResultObject", "SEG_SERIES_NUMBER", "segmentation", "write_segmentation"]
