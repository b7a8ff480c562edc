"""The PACS in the window, against a real Orthanc: File → Query PACS finds studies, retrieves the ones picked with
progress, and the worklist opens them; File → Receive studies starts our node, and studies the archive pushes fill
the worklist as they arrive."""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from PySide6.QtCore import QItemSelectionModel

from model.pacs.profiles import Profile, Profiles
from tests.app.qt_helpers import TIMEOUT_MS
from tests.orthanc import Orthanc, archive_with_demo

from app.main_window import MainWindow


@pytest.fixture
def archive(tmp_path_factory):
    orthanc, node_port, files = archive_with_demo(tmp_path_factory.mktemp("pacs-window-demo"), patients=3, seed=9)
    yield orthanc, node_port, files
    orthanc.stop()


def patients_of(files) -> dict[str, str]:
    """Study UID -> the patient the worklist will name (CBIS-DDSM: P_NNNNN from the patient ID)."""
    out = {}
    for f in files:
        header = pydicom.dcmread(f, stop_before_pixels=True)
        out[header.StudyInstanceUID] = "P_" + str(header.PatientID).split("P_")[1][:5]
    return out


def test_query_pacs_retrieves_the_studies_picked_and_the_worklist_opens_them(qtbot, window, archive):
    orthanc, _, files = archive
    Profiles().add(Profile("main", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port))
    dialog = window.pacs_control.ask_query()
    assert dialog.archive.currentData() == "main" and not dialog.retrieve.isEnabled()
    dialog.search.click()
    # the rows, and the search's worker finished (Retrieve waits for it)
    qtbot.waitUntil(lambda: dialog.table.rowCount() == len(files) and dialog.search.isEnabled(), timeout=TIMEOUT_MS)
    assert dialog.message.text() == f"{len(files)} studies"
    dialog.table.selectRow(0)  # then Ctrl+click on the third row, as a reader picks two studies
    dialog.table.selectionModel().select(dialog.table.model().index(2, 0), QItemSelectionModel.SelectionFlag.Select
                                         | QItemSelectionModel.SelectionFlag.Rows)
    chosen = dialog.selected_studies()
    assert len(chosen) == 2 and dialog.retrieve.isEnabled()
    with qtbot.waitSignal(window.indexReady, timeout=TIMEOUT_MS) as opened:
        dialog.retrieve.click()
    index = opened.args[0]
    assert dialog.progress.value() == 2 and dialog.message.text().startswith("Retrieved: 2 new images")
    wanted = patients_of(files)
    assert sorted(index.patients()) == sorted({wanted[s] for s in chosen})
    assert window.worklist.visible_patients() == sorted({wanted[s] for s in chosen})


def test_the_node_fills_the_worklist_as_the_archive_pushes(qtbot, window, archive):
    orthanc, node_port, files = archive
    window.settings.node = ("BCIR", node_port)
    window.actions.node.setChecked(True)
    assert window.pacs_control.node is not None and window.pacs_control.label.isVisible()
    assert window.pacs_control.label.text() == f"Node BCIR:{node_port} · 0 received"
    ids = [orthanc.post("/tools/lookup", pydicom.dcmread(f).SOPInstanceUID.encode(), "text/plain")[0]["ID"]
           for f in files[:2]]
    with qtbot.waitSignal(window.indexReady, timeout=TIMEOUT_MS) as opened:
        orthanc.post("/modalities/BCIR/store", json.dumps(ids).encode(), "application/json")
    assert len(opened.args[0].images) == 2 and window.pacs_control.label.text().endswith("2 received")
    window.actions.node.setChecked(False)
    assert window.pacs_control.node is None and not window.pacs_control.label.isVisible()
    taken = Orthanc()  # a port another program holds: the toggle says so in one line and goes back off
    try:
        window.settings.node = ("BCIR", taken.dicom_port)
        window.actions.node.setChecked(True)
        assert not window.actions.node.isChecked() and window.pacs_control.node is None
        assert f"cannot listen on port {taken.dicom_port}" in window.errors.messages[-1]
    finally:
        taken.stop()


def test_a_study_queried_retrieved_and_read_by_the_ai_gets_its_seg_and_sr_in_the_archive(qtbot, archive, model_file,
                                                                                          cache_dir):
    """The whole path: File → Query PACS finds the studies, Retrieve brings them into the inbox and the worklist
    opens them, the AI reads a case, and File → Send results files the SEG and SR in that case's study."""
    from tests.app.qt_helpers import show_with_ai

    orthanc, _, files = archive
    Profiles().add(Profile("main", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port))
    window = MainWindow(model_path=model_file)
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.pacs_control.send_results("nope") is None  # a name that is not an archive's: one line
        assert "'nope' is not a named archive (known: main)" in window.errors.messages[-1]
        dialog = window.pacs_control.ask_query()
        dialog.search.click()
        qtbot.waitUntil(lambda: dialog.table.rowCount() == len(files) and dialog.search.isEnabled(),
                        timeout=TIMEOUT_MS)
        dialog.table.selectAll()
        with qtbot.waitSignal(window.indexReady, timeout=TIMEOUT_MS) as opened:
            dialog.retrieve.click()
        index = opened.args[0]
        assert index.root == window.pacs_control.inbox and len(index.images) == len(files)
        sent = None
        for patient in index.patients():  # the first case on which the AI lists a lesion
            show_with_ai(qtbot, window, patient)
            with qtbot.waitSignal(window.pacs_control.sent, timeout=TIMEOUT_MS) as blocker:
                assert window.pacs_control.send_results("main") is not None
            if blocker.args[0]:
                sent = patient
                break
        assert sent is not None, "the disc model listed no lesion on any demo case"
        study = pydicom.dcmread(next(i.path for i in index.patients()[sent] if i.view == "CC"),
                                stop_before_pixels=True).StudyInstanceUID
        found = orthanc.post("/tools/lookup", study.encode(), "text/plain")
        series = orthanc.get(f"/studies/{next(f for f in found if f['Type'] == 'Study')['ID']}/series")
        assert {"SEG", "SR"} <= {s["MainDicomTags"]["Modality"] for s in series}
        assert window.statusBar().currentMessage().endswith("result objects (SEG and SR) sent to main")
    finally:
        window.close()


def test_a_reader_sends_their_committed_read_to_the_pacs_as_sr(qtbot, window, archive, tmp_path):
    import highdicom as hd
    from PySide6.QtCore import Qt
    from pydicom.sr.codedict import codes

    from model.reading.reads import Reader
    from model.reading.store import ReadStore
    from tests.app.qt_helpers import open_root

    orthanc, _, files = archive
    Profiles().add(Profile("main", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port))
    db = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    with ReadStore(db) as setup:
        setup.add_reader(Reader("AA", "Dr A"))
    index = open_root(qtbot, window, files[0].parents[4])
    control, dock = window.reading_control, window.reading
    send = next(a for a in window.actions.reading_actions if a.text() == "Send my read to PACS (SR)")
    assert not send.isEnabled()  # audit mode
    assert control.start(ReadStore(db), "AA") and send.isEnabled()
    case = next(p for p, images in sorted(index.patients().items())
                if any(i.laterality == "L" and i.view == "CC" for i in images))
    window.select_patient(case)
    qtbot.waitUntil(lambda: control.session.opened is not None and control.session.opened.case_id == case,
                    timeout=TIMEOUT_MS)
    send.trigger()  # nothing committed yet: one line, nothing sent
    assert window.errors.messages[-1].endswith("commit your read of this case first (Reading → Commit my read)")
    for side, outcome, score in (("L", "assessment", "4A"), ("R", "routine", "1")):
        for box, value in ((dock.breasts[side].outcome, outcome), (dock.breasts[side].score, score)):
            box.setCurrentIndex(box.findData(value))  # what a reader's pick does
            box.activated.emit(box.currentIndex())
    dock.finding_type.setCurrentText("architectural distortion")
    dock.finding_side.setCurrentIndex(dock.finding_side.findData("L"))
    dock.add_finding.click()
    dock.mark.click()
    lcc = next(i for i in window.worklist.patients[case] if i.laterality == "L" and i.view == "CC")
    window.viewer.markClicked.emit(lcc.path, 52.0, 61.0)
    qtbot.keyClick(window.viewer.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert dock.message.text().startswith("Read committed")
    with qtbot.waitSignal(window.pacs_control.sent, timeout=TIMEOUT_MS) as blocker:
        send.trigger()
    studies = {pydicom.dcmread(i.path, stop_before_pixels=True).StudyInstanceUID for i in index.patients()[case]}
    assert blocker.args[0] == len(studies)
    assert window.statusBar().currentMessage() == f"{len(studies)} reports of your read (SR) sent to main"
    study = pydicom.dcmread(lcc.path, stop_before_pixels=True).StudyInstanceUID
    found = next(f for f in orthanc.post("/tools/lookup", study.encode(), "text/plain") if f["Type"] == "Study")
    (sr_series,) = [s for s in orthanc.get(f"/studies/{found['ID']}/series") if s["MainDicomTags"]["Modality"] == "SR"]
    assert sr_series["MainDicomTags"]["SeriesDescription"] == "Screening read (AA)"
    instance = orthanc.get(f"/series/{sr_series['ID']}/instances")[0]["ID"]
    sr = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{instance}/file"))))
    (marked,) = sr.content.get_planar_roi_measurement_groups()
    assert marked.finding_type == codes.SCT.ArchitecturalDistortionOfBreast
    assert [list(p) for p in marked.roi.value] == [[52.0, 61.0]]
