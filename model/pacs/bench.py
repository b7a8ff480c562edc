"""``bcir pacs bench``: throughput of the PACS paths on this machine, medians over repeats, in one run.

- *Receiving*: N synthetic mammograms (16-bit, explicit VR little endian, distinct UIDs, one study) pushed to a fresh
  :class:`model.pacs.node.StorageNode` on a free loopback port, filing into a fresh temporary inbox, from 1 and from
  4 concurrent associations. The senders run in a process of their own, as an archive would: the node's process
  does only the receiving. They disable Nagle's algorithm, as Orthanc does for DICOM (pynetdicom leaves it on, and a
  small instance then waits for the receiver's delayed acknowledgement, some 40 ms, which measures TCP, not us). Each run's time is from the first association request to the last instance acknowledged
  (every instance filed whole and fsynced), and each run must file all N, or the bench stops with a PacsError.
- *Retrieving*, when an archive is given: one study from it (``study``, or the one with the most instances that
  its study-level find lists) into a fresh temporary inbox, with C-GET (or WADO-RS for a DICOMweb archive).

Figures are instances/s and MB/s (10^6 bytes of DICOM files: what lands in the inbox), with each run's seconds.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DigitalMammographyXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

from model.errors import ConfigError, PacsError

MAMMOGRAM = (3328, 2560)  # rows, columns of a full-field digital mammogram (70 um pixels), 17 MB at 16 bits
ASSOCIATIONS = (1, 4)
MB = 1e6
SENDER_TIMEOUT_S = 120


def synthetic_instance(pixels: np.ndarray, study_uid: str, series_uid: str, number: int, *,
                       patient_id: str = "BENCH", patient_name: str = "BENCH^SYNTHETIC") -> Dataset:
    """A For Presentation mammogram (MG) holding ``pixels`` (uint16), with a new SOP Instance UID, ready to send."""
    rows, columns = pixels.shape
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    ds.SOPInstanceUID = generate_uid()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientID, ds.PatientName = patient_id, patient_name
    ds.Modality, ds.PresentationIntentType = "MG", "FOR PRESENTATION"
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
    return ds


def synthetic_pixels(rows: int, columns: int, seed: int = 0) -> np.ndarray:
    """A 12-bit breast-like ramp with noise: content does not change the speed of uncompressed transfer."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(3000, 600, columns, dtype=np.float32)[None, :].repeat(rows, axis=0)
    return np.clip(ramp + rng.normal(0, 40, (rows, columns)), 0, 4095).astype(np.uint16)


def write_study(folder: Path, instances: int, rows: int, columns: int, *, seed: int = 0) -> list[Path]:
    """``instances`` synthetic mammograms of one study, written as DICOM files into ``folder``."""
    pixels = synthetic_pixels(rows, columns, seed)
    study, series = generate_uid(), generate_uid()
    paths = []
    for number in range(1, instances + 1):
        ds = synthetic_instance(pixels, study, series, number)
        path = Path(folder) / f"{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


_loaded: dict[str, Dataset] = {}


def no_delay(assoc) -> None:
    """Disable Nagle's algorithm on an established pynetdicom association's socket (as DCMTK-based archives do)."""
    raw = getattr(getattr(getattr(assoc, "dul", None), "socket", None), "socket", None)
    if raw is not None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _send(port: int, paths: list[str], associations: int) -> tuple[float, list[int]]:
    """In the sender process: push ``paths`` to 127.0.0.1:``port`` over ``associations`` concurrent associations
    (round robin); the seconds from the first association request to the last answer, and every status."""
    import pydicom
    from pynetdicom import AE

    for path in paths:
        if path not in _loaded:
            _loaded[path] = pydicom.dcmread(path)
    datasets = [_loaded[p] for p in paths]
    statuses: list[int] = []
    lock = threading.Lock()

    def push(share: list[Dataset]) -> None:
        ae = AE(ae_title="BENCH")
        ae.add_requested_context(DigitalMammographyXRayImageStorageForPresentation, [ExplicitVRLittleEndian])
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = SENDER_TIMEOUT_S
        assoc = ae.associate("127.0.0.1", port, ae_title="BCIR")
        got = []
        if assoc.is_established:
            no_delay(assoc)
            try:
                for ds in share:
                    status = assoc.send_c_store(ds)
                    got.append(int(status.Status) if status else -1)
            finally:
                assoc.release()
        got += [-1] * (len(share) - len(got))  # never sent: the association failed
        with lock:
            statuses.extend(got)

    shares = [datasets[i::associations] for i in range(associations)]
    threads = [threading.Thread(target=push, args=(share,)) for share in shares if share]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, statuses


def _figures(seconds: list[float], instances: int, megabytes: float) -> dict:
    median = statistics.median(seconds)
    return {"instances": instances, "megabytes": round(megabytes, 3), "seconds": round(median, 4),
            "instances_per_s": round(instances / median, 3), "megabytes_per_s": round(megabytes / median, 2),
            "runs_s": [round(s, 4) for s in seconds]}


def bench_receive(paths: list[Path], associations: int, repeats: int, sender: ProcessPoolExecutor,
                  folder: Path) -> dict:
    """Receiving ``paths`` from ``associations`` concurrent associations, ``repeats`` times, each into a fresh node
    and inbox under ``folder``."""
    from model.pacs.node import StorageNode

    seconds = []
    for run in range(repeats):
        inbox = Path(folder) / f"inbox-{associations}-{run}"
        with StorageNode("BCIR", 0, inbox, host="127.0.0.1") as node:
            elapsed, statuses = sender.submit(_send, node.port, [str(p) for p in paths], associations).result()
        try:
            failed = sum(1 for s in statuses if s != 0)
            if failed or node.counts.received != len(paths) or len(node.inbox.files()) != len(paths):
                raise PacsError(f"the bench's node filed {len(node.inbox.files())} of {len(paths)} instances "
                                f"({failed} not acknowledged: {'; '.join(node.counts.problems) or 'no answer'})")
        finally:
            shutil.rmtree(inbox, ignore_errors=True)
        seconds.append(elapsed)
    megabytes = sum(p.stat().st_size for p in paths) / MB
    return {"associations": associations, **_figures(seconds, len(paths), megabytes)}


def _largest_study(archive) -> str:
    matches = archive.find_studies(modality="MG")
    if not matches:
        raise PacsError(f"the archive {archive.name} lists no mammography study to retrieve")

    def count(match) -> int:
        text = match.fields.get("NumberOfStudyRelatedInstances", "")
        return int(text) if text.isdigit() else 0

    return max(matches, key=count).study_uid


def bench_retrieve(archive, study_uid: str, repeats: int, folder: Path) -> dict:
    """Retrieving one study from ``archive`` (C-GET, or WADO-RS), ``repeats`` times, each into a fresh inbox."""
    from model.pacs.inbox import Inbox

    seconds, counts, sizes = [], set(), set()
    for run in range(repeats):
        inbox = Inbox(Path(folder) / f"retrieved-{run}")
        start = time.perf_counter()
        result = archive.get_study(study_uid, inbox)
        seconds.append(time.perf_counter() - start)
        files = inbox.files()
        counts.add(len(files))
        sizes.add(sum(f.stat().st_size for f in files))
        shutil.rmtree(inbox.root, ignore_errors=True)
        if result.failed or not files:
            raise PacsError(f"the archive {archive.name} sent {len(files)} instances of the study"
                            + (f", {result.failed} failed" if result.failed else ""))
    if len(counts) != 1:
        raise PacsError(f"the archive {archive.name} sent the study with {sorted(counts)} instances in different runs")
    return {"archive": archive.name, **_figures(seconds, counts.pop(), max(sizes) / MB)}


def run_bench(*, instances: int = 8, repeats: int = 3, rows: int = MAMMOGRAM[0], columns: int = MAMMOGRAM[1],
              archive=None, study: str | None = None, folder: str | Path | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """The whole bench (see the module's docstring) as one JSON-ready report. ``folder``: where the synthetic
    instances and the inboxes go (default: a temporary folder, removed afterwards)."""
    if instances < 1 or repeats < 1:
        raise ConfigError("instances" if instances < 1 else "repeats", "must be at least 1")
    if rows < 1 or columns < 1:
        raise ConfigError("size", f"{rows} x {columns} is not an image size")
    say = progress or (lambda _line: None)
    import multiprocessing

    import pynetdicom
    import pydicom

    work = Path(tempfile.mkdtemp(prefix="bcir-pacs-bench-", dir=folder))
    try:
        source = work / "source"
        source.mkdir()
        say(f"writing {instances} synthetic instances of {rows} x {columns}")
        paths = write_study(source, instances, rows, columns)
        report = {
            "instance": {"rows": rows, "columns": columns, "bits_allocated": 16, "bytes": paths[0].stat().st_size},
            "instances": instances, "repeats": repeats, "receive": [], "retrieve": None,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "pydicom": pydicom.__version__, "pynetdicom": pynetdicom.__version__},
        }
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as sender:
            bench_receive(paths[:1], 1, 1, sender, work)  # warm-up: the sender's imports, the first connection
            for associations in ASSOCIATIONS:
                say(f"receiving from {associations} association{'s' if associations > 1 else ''}")
                report["receive"].append(bench_receive(paths, associations, repeats, sender, work))
        if archive is not None:
            uid = study or _largest_study(archive)
            say(f"retrieving a study from {archive.name}")
            report["retrieve"] = bench_retrieve(archive, uid, repeats, work)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def describe(report: dict) -> list[str]:
    """The report as lines for a terminal."""
    size = report["instance"]
    lines = [f"{report['instances']} synthetic mammograms of {size['rows']} x {size['columns']} "
             f"({size['bytes'] / MB:.1f} MB each), median of {report['repeats']} runs"]
    for row in report["receive"]:
        many = row["associations"]
        lines.append(f"receive, {many} association{'s' if many > 1 else ' '}: {row['instances_per_s']:8.2f} "
                     f"instances/s {row['megabytes_per_s']:8.1f} MB/s ({row['seconds']:.2f} s)")
    got = report["retrieve"]
    if got:
        lines.append(f"retrieve from {got['archive']}: {got['instances_per_s']:8.2f} instances/s "
                     f"{got['megabytes_per_s']:8.1f} MB/s ({got['instances']} instances, {got['megabytes']:.1f} MB, "
                     f"{got['seconds']:.2f} s)")
    return lines


__all__ = ["MAMMOGRAM", "bench_receive", "bench_retrieve", "describe", "no_delay", "run_bench", "synthetic_instance",
           "synthetic_pixels", "write_study"]
