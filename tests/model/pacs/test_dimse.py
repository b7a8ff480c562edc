"""The PACS over DIMSE against a real Orthanc (Debian's package, started by the tests): echo, study-level find,
C-GET into our inbox byte for byte, C-MOVE to our own node, pushes to the node (never stored twice), and the
failures a site meets, each in one line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from model.errors import ConfigError, PacsError
from model.pacs.archive import Archive, ArchiveProfile
from model.pacs.inbox import Inbox
from model.pacs.node import StorageNode
from tests.conftest import make_dicom
from tests.orthanc import Orthanc
from tests.postgres import free_port

WAIT_S = 30


def profile(orthanc: Orthanc) -> ArchiveProfile:
    return ArchiveProfile(orthanc.ae_title, "127.0.0.1", orthanc.dicom_port, calling_ae="BCIR")


def wait_until(check, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {WAIT_S} s")
        time.sleep(0.1)


def test_echo_and_a_peer_that_is_not_there(pacs):
    orthanc, _, _ = pacs
    Archive(profile(orthanc)).echo()
    port = free_port()
    with pytest.raises(PacsError) as info:
        Archive(ArchiveProfile("NOBODY", "127.0.0.1", port)).echo()
    assert str(info.value) == f"the archive NOBODY@127.0.0.1:{port} cannot be reached (connection refused)"
    with pytest.raises(ConfigError, match="is not an AE title"):
        ArchiveProfile("A" * 17, "127.0.0.1", 104)
    with pytest.raises(ConfigError, match="is not a TCP port"):
        ArchiveProfile("PACS", "127.0.0.1", 70000)


def test_find_studies_by_patient_and_by_modality(pacs):
    orthanc, _, files = pacs
    archive = Archive(profile(orthanc))
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    every = archive.find_studies()
    assert sorted(m.study_uid for m in every) == sorted({h.StudyInstanceUID for h in headers})
    one = headers[0]
    (match,) = archive.find_studies(patient_id=one.PatientID)
    assert match.study_uid == one.StudyInstanceUID and match.fields["PatientID"] == one.PatientID
    assert match.fields["NumberOfStudyRelatedInstances"] == "1"
    assert archive.find_studies(patient_id="NO-SUCH-PATIENT") == []
    assert archive.find_studies(modality="CT") == []


def test_c_get_brings_the_images_back_byte_for_byte(pacs, tmp_path):
    orthanc, _, files = pacs
    original = pydicom.dcmread(files[0])
    inbox = Inbox(tmp_path / "inbox")
    seen = []
    result = Archive(profile(orthanc)).get_study(original.StudyInstanceUID, inbox,
                                                 progress=lambda done, total: seen.append((done, total)))
    (path,) = result.stored
    assert orthanc.file_of(original.SOPInstanceUID) == files[0].read_bytes()  # Orthanc kept what was pushed
    received = pydicom.dcmread(path)
    assert received.PixelData == original.PixelData and received == original  # every element, the pixels too
    assert path == inbox.path_of(original) and result.failed == 0
    again = Archive(profile(orthanc)).get_study(original.StudyInstanceUID, inbox)
    assert again.stored == [] and again.repeated == 1  # a study retrieved twice is filed once
    assert len(inbox.files()) == 1


def test_c_move_and_pushes_reach_our_node_whole_and_once(pacs, tmp_path):
    orthanc, node_port, files = pacs
    arrived = []
    node = StorageNode("BCIR", node_port, tmp_path / "inbox", host="127.0.0.1", on_received=arrived.append)
    with node:
        Archive(profile(orthanc)).echo()
        study = pydicom.dcmread(files[1], stop_before_pixels=True).StudyInstanceUID
        moved = Archive(profile(orthanc)).move_study(study, "BCIR")
        assert moved.failed == 0
        wait_until(lambda: node.counts.received == 1, "instance moved to the node")
        (path,) = node.inbox.files()
        assert pydicom.dcmread(path) == pydicom.dcmread(files[1]) and arrived[0].new
        before = path.stat().st_mtime_ns
        instance = orthanc.post("/tools/lookup", pydicom.dcmread(files[1]).SOPInstanceUID.encode(), "text/plain")[0]
        orthanc.post("/modalities/BCIR/store", json.dumps([instance["ID"]]).encode(), "application/json")
        wait_until(lambda: node.counts.repeated == 1, "the pushed instance")
        assert path.stat().st_mtime_ns == before and len(node.inbox.files()) == 1  # not written again
        others = [f for f in files if pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID != study]
        ids = [orthanc.post("/tools/lookup", pydicom.dcmread(f).SOPInstanceUID.encode(), "text/plain")[0]["ID"]
               for f in others]
        orthanc.post("/modalities/BCIR/store", json.dumps(ids).encode(), "application/json")
        wait_until(lambda: node.counts.received == len(files), "every pushed instance")
    assert sorted(p.name for p in node.inbox.files()) == sorted(
        f"{pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID}.dcm" for f in files)
    assert not list(Path(node.inbox.root).rglob("*.tmp*"))  # nothing half-written left behind


def test_the_node_takes_mammograms_only_and_says_when_its_port_is_taken(pacs, tmp_path):
    orthanc, node_port, _ = pacs
    ct = make_dicom(tmp_path / "ct.dcm", np.zeros((8, 8), np.uint16), SOPClassUID="1.2.840.10008.5.1.4.1.1.2",
                    Modality="CT", PatientID="CT-ONLY")
    instance = orthanc.upload(ct)["ID"]
    with StorageNode("BCIR", node_port, tmp_path / "inbox", host="127.0.0.1") as node:
        with pytest.raises(Exception):  # Orthanc answers the push with an HTTP error: the node refused the class
            orthanc.post("/modalities/BCIR/store", json.dumps([instance]).encode(), "application/json")
        assert node.inbox.files() == []
        with pytest.raises(PacsError, match=f"cannot listen on port {node_port}"):
            StorageNode("BCIR2", node_port, tmp_path / "other", host="127.0.0.1").start()
    orthanc.get(f"/instances/{instance}")  # still in the archive: only our node refused it
