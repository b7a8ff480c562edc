"""The archive the PACS tests talk to: a real Orthanc, started once per test module."""

from __future__ import annotations

import pytest

from tests.orthanc import Orthanc
from tests.postgres import free_port


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc holding two demo patients' full mammograms, and the port our node will listen on (Orthanc knows it
    as BCIR, for C-MOVE and pushes)."""
    from model.data.synth.cbis_writer import write_demo_dataset

    demo = tmp_path_factory.mktemp("pacs-demo")
    write_demo_dataset(demo, patients=2, seed=5, size="small", workers=1)
    node_port = free_port()
    orthanc = Orthanc({"BCIR": ("BCIR", node_port)})
    files = sorted(p for p in demo.rglob("*.dcm") if "full mammogram" in p.as_posix())
    for path in files:
        assert orthanc.upload(path)["Status"] == "Success"
    yield orthanc, node_port, files
    orthanc.stop()
