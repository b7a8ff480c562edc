"""The AI's lesions as DICOM SEG (highdicom) that belong to the source study, written by `bcir export` and sent back
to the real Orthanc with `bcir pacs send`: the archive files them with the study, next to the images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from model.errors import DataError
from model.infer.predictor import InferenceConfig, Predictor
from model.nn.weights import load_model, save_model
from model.pacs.results import segmentation

ROOT = Path(__file__).resolve().parents[3]


def bcir(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)


def test_export_writes_a_seg_and_an_sr_per_view_with_lesions_and_the_archive_files_them_with_the_study(
        pacs, disc_model, tmp_path):
    from pydicom.sr.codedict import codes

    orthanc, _, files = pacs
    weights = save_model(disc_model.net, disc_model.card, tmp_path / "discs.safetensors")
    cc = [f for f in files if "_CC/" in f.as_posix()]
    out = bcir("export", *map(str, cc), "--out", str(tmp_path / "results"), "--weights", str(weights), "--device",
               "cpu", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    segs = [i for i in report["written"] if i["kind"] == "SEG"]
    srs = {i["source"]: i for i in report["written"] if i["kind"] == "SR"}
    assert segs and len(segs) + report["no_lesion"] == len(cc) and set(srs) == {i["source"] for i in segs}
    predictor = Predictor(load_model(weights), "cpu", config=InferenceConfig())
    for item in segs:
        source = pydicom.dcmread(item["source"])
        seg = hd.seg.segread(item["path"])
        assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == source.PatientID
        assert seg.SeriesInstanceUID != source.SeriesInstanceUID and seg.Modality == "SEG"
        assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == \
            source.SOPInstanceUID
        result = predictor.predict(item["source"])
        assert item["lesions"] == len(result.lesions) == len(seg.SegmentSequence)
        labels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=True)[0]
        assert np.array_equal(labels, result.lesion_labels(disc_model.threshold))  # exactly what the reader sees
        algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (disc_model.card.name, disc_model.version)
        assert seg.SegmentSequence[0].SegmentLabel.startswith("Lesion 1: p(malignant) ")

        sr = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(srs[item["source"]]["path"]))
        assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.Modality == "SR"
        groups = sr.content.get_planar_roi_measurement_groups()
        assert len(groups) == len(result.lesions)
        for n, (group, lesion) in enumerate(zip(groups, result.lesions), 1):
            assert str(group.tracking_uid) == str(seg.SegmentSequence[n - 1].TrackingUID)  # the same lesion
            (p,) = group.get_measurements(name=codes.DCM.ProbabilityOfCancer)
            assert abs(p.value - lesion.p_malignant) < 1e-6
            assert group.roi is None and group.referenced_segmentation_frame.referenced_sop_instance_uid == \
                seg.SOPInstanceUID
            assert group.finding_sites[0].laterality == {"L": codes.SCT.Left, "R": codes.SCT.Right}[source_side(source)]

    objects = [i["path"] for i in report["written"]]
    peer = ["--ae", orthanc.ae_title, "--host", "127.0.0.1", "--port", str(orthanc.dicom_port)]
    sent = bcir("pacs", "send", *peer, *objects)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == f"{len(objects)} objects stored by ORTHANC@127.0.0.1:{orthanc.dicom_port}"
    for item in segs:
        source = pydicom.dcmread(item["source"], stop_before_pixels=True)
        studies = orthanc.post("/tools/lookup", source.StudyInstanceUID.encode(), "text/plain")
        study = next(f for f in studies if f["Type"] == "Study")
        modalities = sorted(s["MainDicomTags"]["Modality"] for s in orthanc.get(f"/studies/{study['ID']}/series"))
        assert modalities == ["MG", "SEG", "SR"]  # the image, and our two series beside it


def source_side(source) -> str:
    return str(source.get("ImageLaterality") or source.get("Laterality") or "")[:1] or \
        ("L" if "_LEFT_" in str(source.PatientID) else "R")


def test_a_view_without_lesions_or_with_labels_of_another_size_is_refused_in_one_line(pacs):
    _, _, files = pacs
    source = pydicom.dcmread(files[0])
    with pytest.raises(DataError, match="no lesion is listed"):
        segmentation(source, np.zeros((source.Rows, source.Columns), np.uint8), [], model_name="m", model_version="v")
    with pytest.raises(DataError, match="the lesion labels are 5x4"):
        segmentation(source, np.zeros((4, 5), np.uint8), [0.5], model_name="m", model_version="v")
