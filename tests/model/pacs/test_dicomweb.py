"""The archive over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) against the real Orthanc's DICOMweb plugin: the same studies
as over DIMSE, the images back element for element, a SEG stored with its study, and one line for a dead URL."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from model.errors import ConfigError, PacsError
from model.pacs.archive import Archive, ArchiveProfile
from model.pacs.dicomweb import WebArchive
from model.pacs.inbox import Inbox
from model.pacs.results import segmentation
from tests.postgres import free_port


def test_qido_finds_what_c_find_finds(pacs):
    orthanc, _, files = pacs
    web = WebArchive(f"{orthanc.url}/dicom-web/")
    web.echo()
    dimse = Archive(ArchiveProfile(orthanc.ae_title, "127.0.0.1", orthanc.dicom_port))
    assert sorted(m.study_uid for m in web.find_studies()) == sorted(m.study_uid for m in dimse.find_studies())
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    (match,) = web.find_studies(patient_id=header.PatientID)
    assert match.study_uid == header.StudyInstanceUID and match.fields["PatientID"] == header.PatientID
    assert web.find_studies(patient_id="NO-SUCH-PATIENT") == []


def test_wado_brings_the_study_back_and_stow_stores_a_seg_with_it(pacs, tmp_path):
    orthanc, _, files = pacs
    web = WebArchive(f"{orthanc.url}/dicom-web")
    original = pydicom.dcmread(files[0])
    result = web.get_study(original.StudyInstanceUID, Inbox(tmp_path / "inbox"))
    (path,) = result.stored
    received = pydicom.dcmread(path)
    assert received.PixelData == original.PixelData and received == original
    with pytest.raises(PacsError, match=r"holds no study 1\.2\.3\.4\.5$"):
        web.get_study("1.2.3.4.5", Inbox(tmp_path / "inbox"))  # a study the archive does not hold
    with pytest.raises(PacsError, match=r"failed the search \(HTTP 404\)$"):
        WebArchive(f"{orthanc.url}/no-such-service").find_studies()  # a URL that is not the DICOMweb root
    labels = np.zeros((original.Rows, original.Columns), np.uint8)
    labels[5:25, 5:30] = 1
    seg = segmentation(original, labels, [0.7], model_name="B-Cir U-Net", model_version="test")
    seg_path = tmp_path / "seg.dcm"
    seg.save_as(seg_path)
    assert web.send([seg_path]) == [seg.SOPInstanceUID]
    stored = pydicom.dcmread(pydicom.filebase.DicomBytesIO(orthanc.file_of(seg.SOPInstanceUID)))
    assert stored.Modality == "SEG" and stored.StudyInstanceUID == original.StudyInstanceUID


def test_a_dicomweb_url_that_does_not_answer_or_is_not_one_gets_one_line():
    port = free_port()
    with pytest.raises(PacsError) as info:
        WebArchive(f"http://127.0.0.1:{port}/dicom-web").echo()
    assert str(info.value).startswith(f"the DICOMweb service http://127.0.0.1:{port}/dicom-web cannot be reached")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="is not an http:// or https:// URL"):
        WebArchive("ftp://pacs/dicom-web")
