"""Faults a site meets when it asks an archive for studies, each one line (PacsError) and nothing received lost:
an archive that is down, an association refused for a wrong AE title (a real Orthanc that checks them), a peer that
never answers (a real socket), a SOP class the peer does not accept (our own node), a retrieve cut off halfway
(over DIMSE and WADO-RS: the inbox keeps whole instances, a repeat fetches only the rest), and a study with no
mammograms."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.uid import BasicTextSRStorage, CTImageStorage, SecondaryCaptureImageStorage, generate_uid

from model.errors import Cancelled, ConfigError, PacsError
from model.pacs.archive import Archive, ArchiveProfile
from model.pacs.dicomweb import WebArchive
from model.pacs.inbox import Inbox
from model.pacs.node import StorageNode
from tests.conftest import make_dicom
from tests.orthanc import Orthanc
from tests.postgres import free_port

ROOT = Path(__file__).resolve().parents[3]
SERIES_SIZES = (3, 2)  # the study that is cut off: two series


def instance(path: Path, study: str, series: str, *, sop_class: str = SecondaryCaptureImageStorage,
             modality: str = "MG", seed: int = 0) -> pydicom.Dataset:
    """A small instance of ``sop_class`` in ``study``/``series`` (pixels for images, none for an SR)."""
    pixels = None if modality == "SR" else np.random.default_rng(seed).integers(0, 4096, (16, 12), dtype=np.uint16)
    make_dicom(path, pixels, StudyInstanceUID=study, SeriesInstanceUID=series, SOPClassUID=sop_class,
               Modality=modality, PatientID="FAULTS")
    dataset = pydicom.dcmread(path)
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.save_as(path, enforce_file_format=True)
    return dataset


class CountingInbox(Inbox):
    """An inbox that counts every instance handed to it: what the archive really transferred."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.handed: list[str] = []

    def store(self, dataset, file_meta=None):
        self.handed.append(str(dataset.SOPInstanceUID))
        return super().store(dataset, file_meta)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Orthanc holding: a mammography study of two series (3 + 2 instances), a CT study, an SR-only study, and a
    study of one mammogram and one SR; (orthanc, {name: study UID}, {name: [datasets]})."""
    folder = tmp_path_factory.mktemp("faults")
    orthanc = Orthanc()
    studies = {name: generate_uid() for name in ("mg", "ct", "sr", "mixed")}
    pushed: dict[str, list[pydicom.Dataset]] = {name: [] for name in studies}
    series = [generate_uid() for _ in SERIES_SIZES]
    plan = [("mg", series[k], SecondaryCaptureImageStorage, "MG") for k, n in enumerate(SERIES_SIZES) for _ in range(n)]
    plan += [("ct", generate_uid(), CTImageStorage, "CT"), ("sr", generate_uid(), BasicTextSRStorage, "SR"),
             ("mixed", generate_uid(), SecondaryCaptureImageStorage, "MG"),
             ("mixed", generate_uid(), BasicTextSRStorage, "SR")]
    try:
        for n, (name, series_uid, sop_class, modality) in enumerate(plan):
            path = folder / f"{n}.dcm"
            pushed[name].append(instance(path, studies[name], series_uid, sop_class=sop_class, modality=modality,
                                         seed=n))
            assert orthanc.upload(path)["Status"] == "Success"
        yield orthanc, studies, pushed
    finally:
        orthanc.stop()


def dimse(orthanc: Orthanc, **kw) -> Archive:
    return Archive(ArchiveProfile(orthanc.ae_title, "127.0.0.1", orthanc.dicom_port, **kw))


def bcir(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_an_archive_that_is_down_is_one_line_for_every_request(tmp_path):
    port = free_port()
    down = Archive(ArchiveProfile("NOBODY", "127.0.0.1", port))
    sc = tmp_path / "sc.dcm"
    instance(sc, generate_uid(), generate_uid())
    inbox = Inbox(tmp_path / "inbox")
    for request in (down.echo, down.find_studies, lambda: down.get_study("1.2.3", inbox),
                    lambda: down.move_study("1.2.3", "BCIR"), lambda: down.send([sc])):
        with pytest.raises(PacsError) as info:
            request()
        assert str(info.value) == f"the archive NOBODY@127.0.0.1:{port} cannot be reached (connection refused)"
    assert inbox.files() == []
    got = bcir("pacs", "get", "--ae", "NOBODY", "--host", "127.0.0.1", "--port", str(port), "1.2.3",
               "--inbox", str(tmp_path / "inbox"))
    assert got.returncode == 1 and got.stderr.strip() == (
        f"bcir pacs get: the archive NOBODY@127.0.0.1:{port} cannot be reached (connection refused)")


def test_wrong_ae_titles_are_refused_in_one_line_that_names_the_title_to_check(tmp_path):
    # Orthanc as a careful site runs it: it checks the title it is called by, and serves known modalities only;
    # LIMITED is known but may not query or retrieve
    strict = {"DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
              "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
              "DicomModalities": {"BCIR": ["BCIR", "127.0.0.1", free_port()],
                                  "LIMITED": {"AET": "LIMITED", "Host": "127.0.0.1", "Port": free_port(),
                                              "AllowFind": False, "AllowGet": False, "AllowMove": False}}}
    orthanc = Orthanc(config=strict)
    try:
        study = generate_uid()
        instance(tmp_path / "mg.dcm", study, generate_uid())
        orthanc.upload(tmp_path / "mg.dcm")
        port = orthanc.dicom_port
        assert [m.study_uid for m in dimse(orthanc).find_studies()] == [study]  # the right titles are served
        with pytest.raises(PacsError) as info:
            Archive(ArchiveProfile("PACS", "127.0.0.1", port)).find_studies()
        assert str(info.value) == (f"the archive PACS@127.0.0.1:{port} refused the association: it does not answer "
                                   f"to the AE title PACS (check the archive's AE title)")
        with pytest.raises(PacsError) as info:
            dimse(orthanc, calling_ae="STRANGER").get_study(study, Inbox(tmp_path / "inbox"))
        assert str(info.value) == (
            f"the archive ORTHANC@127.0.0.1:{port} refused the association: it does not know our calling AE title "
            f"STRANGER (the archive must list it as a modality, or call it with one it knows)")
        with pytest.raises(PacsError) as info:
            dimse(orthanc, calling_ae="LIMITED").find_studies()
        assert str(info.value) == (f"the archive ORTHANC@127.0.0.1:{port} aborted the association during the query "
                                   f"(is the calling AE title LIMITED allowed to query it?)")
        with pytest.raises(PacsError, match="aborted the association during the retrieve"):
            dimse(orthanc, calling_ae="LIMITED").get_study(study, Inbox(tmp_path / "inbox"))
        assert Inbox(tmp_path / "inbox").files() == []
        echo = bcir("pacs", "echo", "--ae", "PACS", "--host", "127.0.0.1", "--port", str(port))
        assert echo.returncode == 1 and echo.stderr.strip() == (
            f"bcir pacs echo: the archive PACS@127.0.0.1:{port} refused the association: it does not answer to the "
            f"AE title PACS (check the archive's AE title)")
    finally:
        orthanc.stop()


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection in held:
        connection.close()


def test_a_peer_that_never_answers_times_out_in_one_line(silent_port, tmp_path):
    quiet = Archive(ArchiveProfile("SILENT", "127.0.0.1", silent_port, timeout_s=1))
    for request in (quiet.echo, lambda: quiet.get_study("1.2.3", Inbox(tmp_path / "inbox"))):
        with pytest.raises(PacsError) as info:
            request()
        assert str(info.value) == (f"the archive SILENT@127.0.0.1:{silent_port} did not answer the association "
                                   f"request within 1 s (timed out)")
    with pytest.raises(PacsError) as info:
        WebArchive(f"http://127.0.0.1:{silent_port}/dicom-web", timeout_s=1).find_studies()
    assert str(info.value) == (f"the DICOMweb service http://127.0.0.1:{silent_port}/dicom-web did not answer the "
                               f"search within 1 s (timed out)")
    with pytest.raises(ConfigError, match="timeout 0 s is not between 0 and 3600 s"):
        ArchiveProfile("PACS", "127.0.0.1", 104, timeout_s=0)


def test_an_archive_that_accepts_the_association_but_never_answers_the_query_times_out():
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    release = threading.Event()

    def hang(event):  # a real DICOM peer whose database never comes back
        release.wait(60)
        yield 0x0000, None

    peer = AE("SLOWPACS")
    peer.add_supported_context(FIND)
    port = free_port()
    server = peer.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_FIND, hang)])
    try:
        with pytest.raises(PacsError) as info:
            Archive(ArchiveProfile("SLOWPACS", "127.0.0.1", port, timeout_s=1)).find_studies()
        assert str(info.value) == (f"the archive SLOWPACS@127.0.0.1:{port} did not answer the query within 1 s "
                                   f"(timed out)")
    finally:
        release.set()
        server.shutdown()


def test_a_sop_class_the_peer_does_not_accept_is_named_and_the_rest_is_sent(tmp_path):
    ct, sc = tmp_path / "ct.dcm", tmp_path / "sc.dcm"
    instance(ct, generate_uid(), generate_uid(), sop_class=CTImageStorage, modality="CT")
    kept = instance(sc, generate_uid(), generate_uid())
    port = free_port()
    with StorageNode("OURNODE", port, tmp_path / "node", host="127.0.0.1") as node:  # takes mammograms only
        peer = Archive(ArchiveProfile("OURNODE", "127.0.0.1", port))
        with pytest.raises(PacsError) as info:
            peer.send([ct])
        assert str(info.value) == f"the archive OURNODE@127.0.0.1:{port} does not accept CT Image Storage"
        with pytest.raises(PacsError) as info:
            peer.send([ct, sc])
        assert str(info.value) == (f"the archive OURNODE@127.0.0.1:{port} did not store ct.dcm: it does not accept "
                                   f"CT Image Storage (1 of 2 files stored)")
        (path,) = node.inbox.files()
        assert pydicom.dcmread(path).SOPInstanceUID == kept.SOPInstanceUID and node.counts.received == 1


def _whole_and_equal(orthanc: Orthanc, inbox: Inbox) -> list[str]:
    """The SOP Instance UIDs in ``inbox``, each file read whole and equal to Orthanc's copy, element for element."""
    uids = []
    for path in inbox.files():
        received = pydicom.dcmread(path)
        assert received == pydicom.dcmread(DicomBytesIO(orthanc.file_of(received.SOPInstanceUID)))
        uids.append(str(received.SOPInstanceUID))
    assert not [p for p in Path(inbox.root).rglob("*") if p.is_file() and p.suffix != ".dcm"]  # nothing half-written
    return uids


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_a_retrieve_cut_off_halfway_keeps_whole_instances_and_a_repeat_fetches_only_the_rest(archive, tmp_path,
                                                                                            protocol):
    orthanc, studies, pushed = archive
    peer = dimse(orthanc) if protocol == "dimse" else WebArchive(f"{orthanc.url}/dicom-web")
    every = sorted(str(d.SOPInstanceUID) for d in pushed["mg"])
    first = CountingInbox(tmp_path / "inbox")
    # the Query PACS dialog's cancel: its worker's should_stop turns true (here once the first instance is in)
    with pytest.raises(Cancelled) as info:
        peer.get_study(studies["mg"], first, should_stop=lambda: len(first.handed) >= 1)
    kept = _whole_and_equal(orthanc, first)
    assert 1 <= len(kept) < len(every) and set(kept) <= set(every)
    assert str(info.value) == (f"retrieve of study {studies['mg']} cancelled: the {len(kept)} instances received "
                               f"are kept")
    repeat = CountingInbox(tmp_path / "inbox")
    result = peer.get_study(studies["mg"], repeat)
    assert sorted(repeat.handed) == sorted(set(every) - set(kept))  # only the missing ones crossed the network
    assert len(result.stored) == len(every) - len(kept) and result.repeated == len(kept) and result.failed == 0
    assert sorted(_whole_and_equal(orthanc, repeat)) == every
    again = CountingInbox(tmp_path / "inbox")
    assert peer.get_study(studies["mg"], again).repeated == len(every) and again.handed == []


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_a_study_without_mammograms_is_said_in_one_line_and_nothing_of_it_is_filed(archive, tmp_path, protocol):
    orthanc, studies, pushed = archive
    peer = dimse(orthanc) if protocol == "dimse" else WebArchive(f"{orthanc.url}/dicom-web")
    listed = [m.study_uid for m in peer.find_studies()]
    assert studies["mg"] in listed and studies["mixed"] in listed
    assert studies["ct"] not in listed and studies["sr"] not in listed  # the MG search leaves them out
    assert [m.study_uid for m in peer.find_studies(modality="CT")] == [studies["ct"]]  # they are in the archive
    inbox = Inbox(tmp_path / "inbox")
    for name, kind in (("ct", "CT Image Storage"), ("sr", "Basic Text SR Storage")):
        result = peer.get_study(studies[name], inbox)
        assert result.summary(studies[name]) == (
            f"{studies[name]}: no mammograms in this study (1 {kind}): nothing retrieved")
    assert inbox.files() == []
    mixed = peer.get_study(studies["mixed"], inbox)
    assert mixed.summary(studies["mixed"]) == (f"{studies['mixed']}: 1 instances retrieved, 1 not mammograms left in "
                                               f"the archive (1 Basic Text SR Storage)")
    (path,) = inbox.files()
    assert pydicom.dcmread(path).SOPInstanceUID == pushed["mixed"][0].SOPInstanceUID
    with pytest.raises(PacsError, match=r"holds no study 1\.2\.3\.4\.5$"):
        peer.get_study("1.2.3.4.5", inbox)


def test_the_command_line_says_a_study_has_no_mammograms(archive, tmp_path):
    orthanc, studies, _ = archive
    got = bcir("pacs", "get", "--ae", orthanc.ae_title, "--host", "127.0.0.1", "--port", str(orthanc.dicom_port),
               studies["ct"], "--inbox", str(tmp_path / "inbox"))
    assert got.returncode == 0 and got.stdout.strip() == (
        f"{studies['ct']}: no mammograms in this study (1 CT Image Storage): nothing retrieved")
    assert not list((tmp_path / "inbox").rglob("*.dcm"))
