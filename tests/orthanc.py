"""A throwaway Orthanc for the tests: Debian's own server, a configuration and storage folder of its own, free
loopback ports for DICOM and HTTP, stopped afterwards. Never a skip: where Orthanc is not installed the tests that
need it fail with the line that installs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import watchdog
from tests.postgres import free_port

INSTALL_LINE = ("Orthanc is not installed, so the PACS tests cannot run: apt-get install orthanc orthanc-dicomweb "
                "(.ci/run does it)")
PLUGINS = "/usr/share/orthanc/plugins"
START_WAIT_S = 60


class Orthanc:
    """Orthanc on 127.0.0.1 with AE title ``ORTHANC``; ``modalities`` (name -> (AE, port)) are the peers it may send
    to (C-MOVE destinations, pushes); ``config`` overrides or adds options of its configuration (a stricter archive:
    ``{"DicomCheckCalledAet": True, "DicomAlwaysAllowFind": False, ...}``; a ``DicomModalities`` entry given there
    replaces the one ``modalities`` makes)."""

    ae_title = "ORTHANC"

    def __init__(self, modalities: dict[str, tuple[str, int]] | None = None, config: dict | None = None):
        binary = shutil.which("Orthanc")
        if binary is None:
            pytest.fail(INSTALL_LINE, pytrace=False)
        self.root = Path(tempfile.mkdtemp(prefix="bcir-orthanc-"))
        self.dicom_port, self.http_port = free_port(), free_port()
        settings = {
            "Name": "bcir-test", "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "storage"), "DicomAet": self.ae_title, "DicomPort": self.dicom_port,
            "HttpPort": self.http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False, "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
            "UnknownSopClassAccepted": True, "OverwriteInstances": False, "HttpTimeout": 60,
            "DicomModalities": {name: [ae, "127.0.0.1", port] for name, (ae, port) in (modalities or {}).items()},
            "Plugins": [PLUGINS] if Path(PLUGINS).is_dir() else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        (self.root / "orthanc.json").write_text(json.dumps({**settings, **(config or {})}))
        self.log = open(self.root / "orthanc.log", "wb")
        self.proc = subprocess.Popen([binary, str(self.root / "orthanc.json")], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.root)
        watchdog.on_hang(self.stop)
        deadline = time.monotonic() + START_WAIT_S
        while True:
            try:
                self.get("/system")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"Orthanc did not start: {(self.root / 'orthanc.log').read_text()[-800:]}",
                                pytrace=False)
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            data = response.read()
        return json.loads(data) if data[:1] in (b"{", b"[") else data

    def post(self, path: str, body: bytes, content_type: str = "application/dicom"):
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
        return json.loads(data) if data[:1] in (b"{", b"[") else data

    def upload(self, path: Path) -> dict:
        """Push one DICOM file through the REST API, as a site's import would."""
        return self.post("/instances", Path(path).read_bytes())

    def file_of(self, sop_instance_uid: str) -> bytes:
        """The file Orthanc stores for an instance, byte for byte."""
        found = self.post("/tools/lookup", sop_instance_uid.encode(), "text/plain")
        instance = next(f for f in found if f["Type"] == "Instance")
        return self.get(f"/instances/{instance['ID']}/file")

    def stop(self) -> None:
        watchdog.forget(self.stop)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def archive_with_demo(folder: Path, *, patients: int, seed: int) -> tuple[Orthanc, int, list[Path]]:
    """Orthanc holding the full mammograms of a small synthetic CBIS-DDSM written into ``folder``, and a free port
    it knows as our node BCIR (for C-MOVE and pushes); (orthanc, node port, the files pushed)."""
    from model.data.synth.cbis_writer import write_demo_dataset

    write_demo_dataset(folder, patients=patients, seed=seed, size="small", workers=1)
    node_port = free_port()
    orthanc = Orthanc({"BCIR": ("BCIR", node_port)})
    files = sorted(p for p in Path(folder).rglob("*.dcm") if "full mammogram" in p.as_posix())
    for path in files:
        if orthanc.upload(path)["Status"] != "Success":
            orthanc.stop()
            pytest.fail(f"Orthanc did not take {path.name}", pytrace=False)
    return orthanc, node_port, files


__all__ = ["INSTALL_LINE", "Orthanc", "archive_with_demo"]
