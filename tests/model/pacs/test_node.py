"""Our DICOM node under load and under faults, really started on a free loopback port: 500 instances from 4
concurrent associations filed once (some pushed by all four at the same moment), the compressed transfer syntaxes
filed as sent, malformed instances refused without a patient identifier in the log, a full disk (a real file size
limit on a real `bcir node`) refused with out-of-resources and nothing half-written, and the throughput bench."""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    DigitalMammographyXRayImageStorageForPresentation as MG, ExplicitVRLittleEndian, JPEG2000Lossless,
    JPEGLSLossless, RLELossless, generate_uid,
)
from pynetdicom import AE

from model.pacs.archive import Archive, ArchiveProfile
from model.pacs.bench import describe, no_delay, run_bench, synthetic_instance
from model.pacs.inbox import Inbox
from model.pacs.node import StorageNode
from tests.postgres import free_port

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 120  # generous: an fsync on a busy shared disk can stall for many seconds (a correctness test)


def instance(rng: np.random.Generator, study: str, series: str, number: int, shape=(64, 64), **tags):
    """A small MG instance with pixels of its own (a mix-up of two files would show)."""
    ds = synthetic_instance(rng.integers(0, 4096, shape, dtype=np.uint16), study, series, number)
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def associate(port: int, syntaxes=(ExplicitVRLittleEndian,), title: str = "SENDER"):
    ae = AE(ae_title=title)
    ae.add_requested_context(MG, list(syntaxes))
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = WAIT_S
    assoc = ae.associate("127.0.0.1", port, ae_title="BCIR")
    assert assoc.is_established
    no_delay(assoc)  # as Orthanc sends: else each small instance waits ~40 ms for TCP's delayed acknowledgement
    return assoc


def leftovers(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file() and p.suffix != ".dcm"]


def test_the_inbox_files_an_instance_once_when_eight_threads_store_it_at_the_same_moment(tmp_path):
    inbox = Inbox(tmp_path / "inbox")
    rng = np.random.default_rng(1)
    for round_ in range(20):
        ds = instance(rng, generate_uid(), generate_uid(), round_)
        barrier, results = threading.Barrier(8), []

        def store(ds=ds, barrier=barrier, results=results):
            copy = pydicom.dcmread(encoded(ds))  # each association decodes a dataset of its own
            barrier.wait(WAIT_S)
            results.append(inbox.store(copy))

        threads = [threading.Thread(target=store) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 8 and sum(r.new for r in results) == 1, f"round {round_}: {results}"
        assert len({r.path for r in results}) == 1 and pydicom.dcmread(results[0].path) == ds
    assert len(inbox.files()) == 20 and leftovers(inbox.root) == []


def encoded(ds) -> io.BytesIO:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer


def test_500_instances_from_4_concurrent_associations_are_stored_once(tmp_path):
    rng = np.random.default_rng(500)
    studies = [(generate_uid(), generate_uid()) for _ in range(5)]
    sent = [instance(rng, *studies[i % 5], i, PatientID=f"P{i % 5}") for i in range(500)]
    shared, unique = sent[:60], sent[60:]  # the shared ones go out from all four associations at the same moment
    arrived, lock = [], threading.Lock()

    def on_received(stored):
        with lock:
            arrived.append(stored)

    barrier = threading.Barrier(4)
    statuses, errors = [], []

    def sender(k: int) -> None:
        try:
            assoc = associate(node.port, title=f"SENDER{k}")
            mine, got = unique[k::4], []
            try:
                for j, ds in enumerate(mine):
                    got.append(assoc.send_c_store(ds).Status)
                    if j < len(shared):
                        barrier.wait(WAIT_S)
                        got.append(assoc.send_c_store(shared[j]).Status)
            finally:
                assoc.release()
            with lock:
                statuses.extend(got)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below, with what it was
            errors.append(repr(exc))
            barrier.abort()

    with StorageNode("BCIR", 0, tmp_path / "inbox", host="127.0.0.1", on_received=on_received) as node:
        threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert len(statuses) == 440 + 4 * 60 and set(statuses) == {0x0000}
    assert (node.counts.received, node.counts.repeated, node.counts.refused) == (500, 180, 0)
    new = [s.path for s in arrived if s.new]
    assert len(new) == 500 and len(set(new)) == 500 and sum(not s.new for s in arrived) == 180
    files = node.inbox.files()
    assert sorted(files) == sorted(new) and len(node.inbox.studies()) == 5 and leftovers(node.inbox.root) == []
    by_uid = {ds.SOPInstanceUID: ds for ds in sent}
    for path in files:
        received = pydicom.dcmread(path)
        original = by_uid[path.stem]
        assert received == original and received.PixelData == original.PixelData
        assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert path == node.inbox.path_of(original)


@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEG2000Lossless, RLELossless], ids=["jpeg-ls", "j2k", "rle"])
def test_compressed_instances_are_filed_in_their_syntax_and_decode_to_the_pixels_sent(tmp_path, syntax):
    rng = np.random.default_rng(7)
    study, series = generate_uid(), generate_uid()
    originals = [instance(rng, study, series, n, shape=(96, 80)) for n in range(3)]
    arrays = [ds.pixel_array.copy() for ds in originals]
    for ds in originals:
        ds.compress(syntax)
    with StorageNode("BCIR", 0, tmp_path / "inbox", host="127.0.0.1") as node:
        assoc = associate(node.port, syntaxes=(syntax,))  # this syntax and no other
        try:
            (context,) = assoc.accepted_contexts
            assert context.transfer_syntax[0] == syntax
            assert [assoc.send_c_store(ds).Status for ds in originals] == [0x0000] * 3
        finally:
            assoc.release()
    assert node.counts.received == 3
    for ds, array in zip(originals, arrays):
        filed = pydicom.dcmread(node.inbox.path_of(ds))
        assert filed.file_meta.TransferSyntaxUID == syntax
        assert filed.PixelData == ds.PixelData  # filed as it came, not decoded and re-encoded
        assert np.array_equal(filed.pixel_array, array)


def test_malformed_instances_are_refused_with_a_status_and_logged_without_the_patient(tmp_path, caplog,
                                                                                      monkeypatch):
    import pynetdicom

    caplog.set_level(logging.INFO)
    name, patient_id = "DOE^JANE", "PID-SECRET-42"
    rng = np.random.default_rng(3)
    study, series = generate_uid(), generate_uid()
    with StorageNode("BCIR", 0, tmp_path / "inbox", host="127.0.0.1") as node:
        # (made once the node runs: pydicom complains of the bad UID as it is set, in this process's log too)
        # a sender that put the patient's ID where the SOP Instance UID goes
        misfiled = instance(rng, study, series, 1, PatientName=name, PatientID=patient_id, SOPInstanceUID=patient_id)
        # pixel data cut short: 64 x 64 x 16 bits need 8192 bytes
        cut = instance(rng, study, series, 2, PatientName=name, PatientID=patient_id)
        cut.PixelData = cut.PixelData[:5000]
        # bytes that are no dataset after a valid file meta, sent as they are
        garbage = instance(rng, study, series, 3, PatientName=name, PatientID=patient_id)
        garbage.save_as(tmp_path / "garbage.dcm", enforce_file_format=True)
        raw = (tmp_path / "garbage.dcm").read_bytes()
        meta_end = 132 + 12 + int.from_bytes(raw[140:144], "little")
        (tmp_path / "garbage.dcm").write_bytes(raw[:meta_end] + b"\xfe\xff\x00\xe0" * 4 + name.encode() * 3)
        good = instance(rng, study, series, 4, PatientName=name, PatientID=patient_id)
        assoc = associate(node.port)
        try:
            assert assoc.send_c_store(misfiled).Status == 0xC000
            assert assoc.send_c_store(cut).Status == 0xC000
            monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
            assert assoc.send_c_store(tmp_path / "garbage.dcm").Status == 0xC000
            monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", False)
            assert assoc.is_established  # the association goes on
        finally:
            assoc.release()
        assoc = associate(node.port)  # and the node takes new ones
        try:
            assert assoc.send_c_store(good).Status == 0x0000
        finally:
            assoc.release()
    assert (node.counts.received, node.counts.refused) == (1, 3)
    assert node.inbox.files() == [node.inbox.path_of(good)] and leftovers(node.inbox.root) == []
    assert list(node.counts.problems) == [
        "SOPInstanceUID is not a DICOM UID (13 characters, not only digits and dots): the instance cannot be filed",
        "its pixel data ends early (5000 of 8192 bytes): the instance cannot be filed",
        "StudyInstanceUID is missing: the instance cannot be filed"]
    refusals = [r.getMessage() for r in caplog.records if "refused an instance" in r.getMessage()]
    assert len(refusals) == 3 and all("from SENDER (status 0xC000)" in line for line in refusals)
    assert "Invalid value for VR UI" in caplog.text  # pydicom did complain about the UID, and was heard ...
    for secret in (patient_id, name, "DOE", "SECRET"):  # ... but no log line names the patient
        assert secret not in caplog.text


def _limited_file_size(limit: int):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk

    return preexec


def test_a_full_disk_refuses_the_instance_with_out_of_resources_and_loses_nothing(tmp_path):
    """A real OS fault in a real ``bcir node``: its files may not grow past 1 MiB (RLIMIT_FSIZE), so writing a 2 MiB
    instance fails in the middle of the write (EFBIG) while small ones are filed. No mock anywhere."""
    port, inbox = free_port(), tmp_path / "inbox"
    rng = np.random.default_rng(4)
    study, series = generate_uid(), generate_uid()
    small = [instance(rng, study, series, n) for n in range(4)]
    big = instance(rng, study, series, 9, shape=(1024, 1024))
    node = subprocess.Popen([sys.executable, "-m", "model.cli", "node", "--ae", "BCIR", "--port", str(port),
                             "--host", "127.0.0.1", "--inbox", str(inbox)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_limited_file_size(1 << 20))
    try:
        ae = AE(ae_title="SENDER")
        ae.add_requested_context("1.2.840.10008.1.1")
        deadline = time.monotonic() + WAIT_S
        while not (echo := ae.associate("127.0.0.1", port, ae_title="BCIR")).is_established:
            assert time.monotonic() < deadline and node.poll() is None, "the node did not start"
            time.sleep(0.2)
        echo.release()
        assoc = associate(port)
        try:
            assert [assoc.send_c_store(ds).Status for ds in small[:3]] == [0x0000] * 3
            assert assoc.send_c_store(big).Status == 0xA700
            assert assoc.send_c_store(small[3]).Status == 0x0000  # the same association goes on
        finally:
            assoc.release()
        echo = ae.associate("127.0.0.1", port, ae_title="BCIR")
        try:
            assert echo.send_c_echo().Status == 0x0000
        finally:
            echo.release()
        node.send_signal(signal.SIGINT)
        out, err = node.communicate(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, err
    assert out.strip() == "received 4 instances, 1 refused: the inbox cannot be written (File too large)"
    files = Inbox(inbox).files()
    assert sorted(files) == sorted(Inbox(inbox).path_of(ds) for ds in small)
    assert leftovers(inbox) == []  # no half-written temporary file of the big one
    for ds in small:
        assert pydicom.dcmread(Inbox(inbox).path_of(ds)) == ds
    assert "refused an instance from SENDER (status 0xA700)" in err


def test_the_bench_reports_consistent_counts_for_receiving_and_retrieving(pacs):
    orthanc, _, files = pacs
    archive = Archive(ArchiveProfile(orthanc.ae_title, "127.0.0.1", orthanc.dicom_port))
    report = run_bench(instances=6, repeats=2, rows=40, columns=32, archive=archive)
    size = report["instance"]
    assert (size["rows"], size["columns"], size["bits_allocated"]) == (40, 32, 16) and size["bytes"] > 40 * 32 * 2
    assert [row["associations"] for row in report["receive"]] == [1, 4]
    for row in [*report["receive"], report["retrieve"]]:
        assert len(row["runs_s"]) == 2 and row["seconds"] == pytest.approx(statistics.median(row["runs_s"]), abs=1e-3)
        assert row["instances_per_s"] == pytest.approx(row["instances"] / row["seconds"], rel=1e-2)
        assert row["megabytes_per_s"] == pytest.approx(row["megabytes"] / row["seconds"], rel=1e-2, abs=0.01)
    for row in report["receive"]:
        assert row["instances"] == 6 and row["megabytes"] == pytest.approx(6 * size["bytes"] / 1e6, abs=1e-3)
    got = report["retrieve"]
    largest = max(archive.find_studies(), key=lambda m: int(m.fields["NumberOfStudyRelatedInstances"]))
    assert got["archive"] == archive.name
    assert got["instances"] == int(largest.fields["NumberOfStudyRelatedInstances"])
    on_disk = {pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID: f.stat().st_size for f in files}
    assert got["megabytes"] == pytest.approx(on_disk[largest.study_uid] / 1e6, rel=1e-2)
    lines = describe(report)
    assert len(lines) == 4 and lines[1].startswith("receive, 1 association") and lines[3].startswith("retrieve from")


def test_bcir_pacs_bench_prints_json_and_refuses_a_size_that_is_none(tmp_path):
    def bcir(*args):
        return subprocess.run([sys.executable, "-m", "model.cli", "pacs", "bench", *args], capture_output=True,
                              text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)

    done = bcir("--instances", "3", "--repeats", "1", "--size", "16x24", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(r["associations"], r["instances"]) for r in report["receive"]] == [(1, 3), (4, 3)]
    assert report["retrieve"] is None and (report["instance"]["rows"], report["instance"]["columns"]) == (16, 24)
    bad = bcir("--size", "big")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "bcir pacs bench: --size 'big' is not ROWSxCOLUMNS (such as 3328x2560)")
