"""Shared fixtures: small synthetic DICOMs and demo studies, made on the fly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: E402

PYDICOM_TEST_FILES = Path(__import__("pydicom").__file__).parent / "data" / "test_files"


def make_dicom(path: Path, pixels: np.ndarray | None = None, **tags) -> Path:
    """Write a small MG DICOM; ``tags`` override or add header elements (None removes one)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.PatientID = "TEST"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    if pixels is not None:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = pixels.shape[:2]
        bits = 8 if pixels.dtype == np.uint8 else 16
        ds.BitsAllocated = ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = 0
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for key, value in tags.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA GPU: where there is none they are skipped, each saying so in the summary
    (``make gpu-check`` runs them on a machine lent one)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none here (make gpu-check runs these where one is lent)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    from tests.watchdog import Watchdog

    config._bcir_watchdog = Watchdog(config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Every test runs under the watchdog (tests/watchdog.py): a hung test ends the run with every thread's stack."""
    watchdog = item.config._bcir_watchdog
    watchdog.arm(item.nodeid)
    try:
        yield
    finally:
        watchdog.disarm()


_SESSION: dict[str, int] = {}
FULL_TEARDOWN = "BCIR_TESTS_FULL_TEARDOWN"  # set: the test process ends through Python's own teardown


def pytest_sessionfinish(session, exitstatus):
    _SESSION["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Once pytest has reported and every fixture has stopped its servers and removed its folders, the process leaves
    with pytest's status without Python's interpreter teardown. That teardown, in a process that made hundreds of Qt
    windows, worker threads and torch thread pools, crashed once in CI with SIGSEGV after all tests had passed (the
    app's own quit is tested on its own, in tests/app/test_real_window.py). ``make test`` runs Python with
    ``-X faulthandler``, so a crash during the tests still prints every thread's stack."""
    if "status" in _SESSION and not os.environ.get(FULL_TEARDOWN):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_SESSION["status"])


@pytest.fixture
def ramp16() -> np.ndarray:
    """A 16-bit ramp that uses values above 255 and above 4095."""
    return (np.arange(64 * 48, dtype=np.uint32).reshape(64, 48) * 13 % 60000).astype(np.uint16)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """A small synthetic CBIS-DDSM download (6 patients, 400 um pixels), shared by the session."""
    from model.data.synth.cbis_writer import write_demo_dataset

    out = tmp_path_factory.mktemp("demo")
    write_demo_dataset(out, patients=6, seed=11, size="small", workers=1)
    return out


@pytest.fixture(scope="session")
def disc_model():
    """A B-Cir U-Net trained for a few seconds to find bright discs: gives real, non-trivial masks
    (random weights give a flat map) for tests of the inference path."""
    import torch

    from model.nn.network import BCirUNet
    from model.nn.card import new_card
    from model.nn.weights import LoadedModel

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = BCirUNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    yy, xx = np.mgrid[:64, :64]
    for _ in range(80):
        images, masks = [], []
        for _ in range(8):
            # what the preprocessing makes of tissue: equalized, so uniform in [0, 1]; a dense disc sits at the top
            img = rng.uniform(0, 0.95, (64, 64)).astype(np.float32)
            cy, cx, r = rng.uniform(12, 52), rng.uniform(12, 52), rng.uniform(4, 10)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            img[disc] = rng.uniform(0.97, 1.0, disc.sum())
            images.append(img)
            masks.append(disc.astype(np.float32))
        x = torch.from_numpy(np.stack(images)[:, None])
        y = torch.from_numpy(np.stack(masks)[:, None])
        logits, _ = net(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return LoadedModel(net=net, card=new_card(net, version="test-discs"), path=None)


@pytest.fixture(autouse=True)
def _user_folders(tmp_path, monkeypatch):
    """Every test gets its own user data and cache folders (reviews, settings, registry, results):
    nothing a test writes reaches the real ~/.local/share or ~/.cache, and no test sees another's."""
    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.setenv("BCIR_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("BCIR_READS_DB", raising=False)  # never a site's real reading database


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL server for the session (tests/postgres.py); each test takes a fresh database."""
    from tests.postgres import Cluster

    cluster = Cluster()
    yield cluster
    cluster.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def reads_db(request, tmp_path) -> str:
    """The URL of an empty reading database, once on each backend: the store's tests run against both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reads.sqlite'}"
    return request.getfixturevalue("pg_cluster").new_database()
