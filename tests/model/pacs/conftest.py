"""The archive the PACS tests talk to: a real Orthanc, started once per test module."""

from __future__ import annotations

import pytest

from tests.orthanc import archive_with_demo


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc holding two demo patients' full mammograms, and the port our node will listen on (Orthanc knows it
    as BCIR, for C-MOVE and pushes)."""
    orthanc, node_port, files = archive_with_demo(tmp_path_factory.mktemp("pacs-demo"), patients=2, seed=5)
    yield orthanc, node_port, files
    orthanc.stop()
