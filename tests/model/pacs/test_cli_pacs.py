"""`bcir pacs` and `bcir node` from the command line, against the real Orthanc of tests/model/pacs/conftest.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom

from tests.postgres import free_port

ROOT = Path(__file__).resolve().parents[3]


def bcir(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, **kw)


def test_echo_find_and_get_from_the_command_line(pacs, tmp_path):
    orthanc, _, files = pacs
    peer = ["--ae", orthanc.ae_title, "--host", "127.0.0.1", "--port", str(orthanc.dicom_port)]
    echo = bcir("pacs", "echo", *peer)
    assert echo.returncode == 0 and echo.stdout.strip() == f"ORTHANC@127.0.0.1:{orthanc.dicom_port} answers"
    found = json.loads(bcir("pacs", "find", *peer, "--json").stdout)["studies"]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert sorted(s["StudyInstanceUID"] for s in found) == sorted(h.StudyInstanceUID for h in headers)
    table = bcir("pacs", "find", *peer, "--patient-id", headers[0].PatientID).stdout.splitlines()
    assert table[0].startswith("PATIENT") and len(table) == 2 and headers[0].StudyInstanceUID in table[1]
    got = bcir("pacs", "get", *peer, headers[0].StudyInstanceUID, headers[1].StudyInstanceUID,
               "--inbox", str(tmp_path / "inbox"))
    assert got.returncode == 0 and got.stdout.count("1 instances retrieved") == 2
    assert len(list((tmp_path / "inbox").rglob("*.dcm"))) == 2
    closed = free_port()
    refused = bcir("pacs", "echo", "--ae", "X", "--host", "127.0.0.1", "--port", str(closed))
    assert refused.returncode == 1 and refused.stderr.strip() == (
        f"bcir pacs echo: the archive X@127.0.0.1:{closed} cannot be reached (connection refused)")
    bad = bcir("pacs", "echo", "--ae", "A\\\\B", "--host", "127.0.0.1", "--port", "104")
    assert bad.returncode == 2 and "is not an AE title" in bad.stderr and "Traceback" not in bad.stderr
    unnamed = bcir("pacs", "find", "--json")
    assert unnamed.returncode == 2 and unnamed.stderr.strip() == (
        "bcir pacs find: name the archive: --pacs NAME, --ae AE --host HOST --port PORT, or --dicomweb URL")
    web = json.loads(bcir("pacs", "find", "--dicomweb", f"{orthanc.url}/dicom-web", "--json").stdout)["studies"]
    assert sorted(s["StudyInstanceUID"] for s in web) == sorted(s["StudyInstanceUID"] for s in found)


def test_the_node_receives_until_stopped_and_says_what_it_got(pacs, tmp_path):
    orthanc, node_port, files = pacs
    # started as a shell's background job starts it: SIGINT ignored, which Ctrl+C must still override
    node = subprocess.Popen([sys.executable, "-m", "model.cli", "node", "--ae", "BCIR", "--port", str(node_port),
                             "--host", "127.0.0.1", "--inbox", str(tmp_path / "inbox")], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 30
        while bcir("pacs", "echo", "--ae", "BCIR", "--host", "127.0.0.1", "--port", str(node_port)).returncode:
            assert time.monotonic() < deadline and node.poll() is None, node.stderr.read() if node.poll() else ""
            time.sleep(0.3)
        ids = [orthanc.post("/tools/lookup", pydicom.dcmread(f).SOPInstanceUID.encode(), "text/plain")[0]["ID"]
               for f in files]
        orthanc.post("/modalities/BCIR/store", json.dumps(ids).encode(), "application/json")
        orthanc.post("/modalities/BCIR/store", json.dumps(ids[:1]).encode(), "application/json")
        node.send_signal(signal.SIGINT)
        out, err = node.communicate(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0 and out.strip() == f"received {len(files)} instances, 1 already there"
    assert len(list((tmp_path / "inbox").rglob("*.dcm"))) == len(files)


def test_named_archives_serve_every_request(pacs, tmp_path):
    orthanc, _, _ = pacs
    env_dir = {"BCIR_DATA_DIR": str(tmp_path / "data")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **env_dir}, timeout=120)

    assert run("pacs", "profiles", "list").stdout.startswith("no named archives")
    added = run("pacs", "profiles", "add", "main", "--ae", "ORTHANC", "--host", "127.0.0.1", "--port",
                str(orthanc.dicom_port))
    assert added.returncode == 0 and added.stdout.strip() == f"main: ORTHANC@127.0.0.1:{orthanc.dicom_port} as BCIR"
    web_added = run("pacs", "profiles", "add", "web", "--dicomweb", f"{orthanc.url}/dicom-web", "--timeout", "7.5")
    assert web_added.stdout.strip() == f"web: {orthanc.url}/dicom-web, timeout 7.5 s"  # a slow archive waits longer
    never = run("pacs", "profiles", "add", "never", "--dicomweb", f"{orthanc.url}/dicom-web", "--timeout", "0")
    assert never.returncode == 2 and "0 s is not between 0 and 3600 s" in never.stderr
    assert run("pacs", "echo", "--pacs", "main").returncode == 0 and run("pacs", "echo", "--pacs", "web").returncode == 0
    dimse = json.loads(run("pacs", "find", "--pacs", "main", "--json").stdout)["studies"]
    web = json.loads(run("pacs", "find", "--pacs", "web", "--json").stdout)["studies"]
    assert dimse and sorted(s["StudyInstanceUID"] for s in dimse) == sorted(s["StudyInstanceUID"] for s in web)
    both = run("pacs", "profiles", "add", "bad", "--ae", "X", "--host", "h", "--port", "1", "--dicomweb", "http://x")
    assert both.returncode == 2 and "needs either --ae, --host and --port, or --dicomweb" in both.stderr
    unknown = run("pacs", "echo", "--pacs", "nope")
    assert unknown.returncode == 2 and "'nope' is not a named archive (known: main, web)" in unknown.stderr
    assert run("pacs", "profiles", "remove", "web").returncode == 0
    assert [line.split()[0] for line in run("pacs", "profiles", "list").stdout.splitlines()] == ["main"]
