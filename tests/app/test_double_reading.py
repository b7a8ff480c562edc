"""A whole screening double reading in the window, with the keyboard: reader A reads three cases (one finding marked
on the image), reader B reads them blind and disagrees on one breast, reader C arbitrates, and the statistics match.
In reading mode no ground truth appears in any widget: every text and tooltip is walked, case after case."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox

from model.reading.reads import Reader
from model.reading.stats import reading_stats
from model.reading.store import ReadStore
from tests.app.qt_helpers import TIMEOUT_MS, every_text, open_root, truth_shown

from app.main_window import MainWindow


@pytest.fixture
def window(qtbot, model_file, cache_dir):
    w = MainWindow(model_path=model_file)
    w.resize(1600, 980)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def assert_no_truth(window, index) -> None:
    assert truth_shown(every_text(window), index) == []


def wait_case(qtbot, window, case: str) -> None:
    qtbot.waitUntil(lambda: window.viewer.patient_id == case and window.reading_control.session.opened is not None
                    and window.reading_control.session.opened.case_id == case, timeout=TIMEOUT_MS)


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.viewer.canvas, k, modifier)


def choose(box: QComboBox, data) -> None:
    """What a reader's pick in a combo box does."""
    box.setCurrentIndex(box.findData(data))
    box.activated.emit(box.currentIndex())


def test_a_double_reading_played_in_the_window_with_no_ground_truth_in_reading_mode(qtbot, window, demo_root,
                                                                                    reads_db):
    with ReadStore(reads_db) as setup:
        for code, name in (("AA", "Dr A"), ("BB", "Dr B"), ("CC1", "Dr C")):
            setup.add_reader(Reader(code, name))
    index = open_root(qtbot, window, demo_root)
    assert truth_shown(every_text(window), index)  # the audit view shows the truth: the walk sees it
    control, dock = window.reading_control, window.reading

    # reader A
    assert control.start(ReadStore(reads_db), "AA")
    assert control.mode_label.text() == "READING as Dr A (AA)" and "READING as Dr A (AA)" in window.windowTitle()
    assert dock.isVisible() and not window.findings.isVisible() and not window.actions.truth.isEnabled()
    cases = sorted(index.patients())[:3]
    assert dock.tabs.tabText(0) == f"First reads ({len(index.patients())})"
    assert_no_truth(window, index)
    window.select_patient(cases[0])
    wait_case(qtbot, window, cases[0])
    assert window.viewer.blinded and not window.viewer.truth_shown  # the AI hidden until A's own read is in
    assert_no_truth(window, index)
    key(qtbot, window, Qt.Key.Key_F9)  # normal both breasts, next case
    wait_case(qtbot, window, cases[1])
    left = dock.breasts["L"]
    choose(left.outcome, "assessment")
    choose(left.score, "4B")
    choose(dock.breasts["R"].score, "1")
    dock.finding_type.setCurrentText("ill-defined mass")
    dock.finding_side.setCurrentIndex(dock.finding_side.findData("L"))
    dock.add_finding.click()
    dock.mark.click()
    assert window.viewer.mark_mode
    lcc = next(i for i in window.worklist.patients[cases[1]] if i.laterality == "L" and i.view == "CC")
    window.viewer.markClicked.emit(lcc.path, 40.0, 30.0)  # what a click on the left CC pane sends
    assert not window.viewer.mark_mode and dock.findings.item(0).text() == "L: ill-defined mass (LCC; 1 mark)"
    qtbot.waitUntil(lambda: window.viewer.pane_of(lcc.path).loaded is not None, timeout=TIMEOUT_MS)
    assert len(window.viewer.pane_of(lcc.path).mark_items) == 1  # the reader sees the mark where they clicked
    assert_no_truth(window, index)
    key(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # commit
    assert dock.message.text().startswith("Read committed")
    assert not window.viewer.blinded and not window.viewer.truth_shown  # the AI now; the truth never
    assert "Dr A (AA)" in dock.revealed.text() and "Recall for assessment" in dock.revealed.text()
    assert "ill-defined mass at 3 o'clock" in dock.revealed.text()  # located from the mark and the breast's outline
    assert_no_truth(window, index)
    key(qtbot, window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    wait_case(qtbot, window, cases[2])
    key(qtbot, window, Qt.Key.Key_F9)
    qtbot.waitUntil(lambda: dock.tabs.tabText(0) == f"First reads ({len(index.patients()) - 3})", timeout=TIMEOUT_MS)
    assert dock.tabs.tabText(3) == "Done (3)"
    control.ask_leave()
    next(b for b in control.leave_prompt.buttons() if b.text() == "Leave reading mode").click()
    assert not control.reading and control.mode_label.text() == "AUDIT (ground truth shown)"
    assert truth_shown(every_text(window), index) and window.findings.isVisible()

    # reader B, blind to A
    assert control.start(ReadStore(reads_db), "BB")
    assert dock.tabs.tabText(1) == "Second reads (3)" and dock.tabs.tabText(0) == f"First reads ({len(index.patients()) - 3})"
    dock.tabs.setCurrentIndex(1)
    window.select_patient(cases[0])
    for n, case in enumerate(cases):
        wait_case(qtbot, window, case)
        assert control.session.opened.role == "second" and dock.revealed.text() == ""  # nothing of A's read
        assert window.viewer.blinded
        assert_no_truth(window, index)
        key(qtbot, window, Qt.Key.Key_F9)  # B calls all three normal: case 2's left breast is discordant
        if n < 2:
            qtbot.waitUntil(lambda n=n: window.viewer.patient_id == cases[n + 1], timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: "Dr A (AA)" in dock.revealed.text(), timeout=TIMEOUT_MS)  # revealed after B's commit
    with ReadStore(reads_db) as check:
        assert check.status(cases[1]).state == "arbitration" and check.status(cases[1]).discordant == ("L",)
        assert check.status(cases[0]).state == check.status(cases[2]).state == "done"
    control.leave()

    # reader C arbitrates
    assert control.start(ReadStore(reads_db), "CC1")
    assert dock.tabs.tabText(2) == "To arbitrate (1)"
    dock.tabs.setCurrentIndex(2)
    dock.lists["arbitration"].item(0).setSelected(True)
    dock.lists["arbitration"].itemClicked.emit(dock.lists["arbitration"].item(0))
    wait_case(qtbot, window, cases[1])
    assert dock.arbitration.isVisible() and "Dr A (AA)" in dock.revealed.text() and "Dr B (BB)" in dock.revealed.text()
    assert not window.viewer.blinded and not window.viewer.truth_shown  # both reads are in: the AI, never the truth
    qtbot.waitUntil(lambda: window.viewer.pane_of(lcc.path).loaded is not None, timeout=TIMEOUT_MS)
    assert [t.label().toPlainText() for t in window.viewer.pane_of(lcc.path).mark_items] == ["AA1"]  # A's mark
    assert_no_truth(window, index)
    # the AI's results for the case on screen go into the store, per breast, for the statistics
    qtbot.waitUntil(lambda: {(cases[1], "L"), (cases[1], "R")} <= set(control.session.store.ai_results()),
                    timeout=TIMEOUT_MS)
    dock.final["L"].setCurrentIndex(dock.final["L"].findData("assessment"))
    dock.reason.setText("an ill-defined mass on both views")
    dock.decide.click()
    assert dock.message.text() == "Final outcome recorded" and dock.tabs.tabText(2) == "To arbitrate (0)"
    stats_dialog = control.show_stats()
    shown = stats_dialog.table.toPlainText()
    assert "Dr A" in shown and "Dr B" in shown and "Dr C" in shown and not stats_dialog.plot.pixmap().isNull()
    assert "not shown in reading mode" in shown and "cancer" not in shown and "TP" not in shown  # no known outcome
    stats_dialog.close()
    control.leave()

    with ReadStore(reads_db) as check:
        stats = reading_stats(check)
        assert check.status(cases[1]).final == {"L": "assessment", "R": "routine"}
        marked = check.reads(cases[1], "AA")[0].breast("L").findings[0]
        assert marked.marks[0].view == "LCC" and marked.marks[0].points == ((40.0, 30.0),)
        assert marked.clock_hour == 3 and marked.depth in ("anterior", "middle", "posterior")  # top of an LCC: lateral
        assert marked.nipple_distance_mm is None  # the demo files give no pixel spacing: no mm is made up
        kinds = [e["kind"] for e in check.events()]
        assert kinds.count("left-reading") == 3
    by = {r.reader: r for r in stats.readers}
    assert (by["AA"].reads, by["AA"].recalls, by["AA"].discordant, by["AA"].upheld) == (3, 1, 1, 1)
    assert (by["BB"].reads, by["BB"].as_second, by["BB"].recalls) == (3, 3, 0)
    assert by["CC1"].arbitrations == 1
    assert by["AA"].ai_breasts >= 2 and by["BB"].ai_breasts >= 2  # case 2's two breasts at least
    assert (stats.site.double_read, stats.site.arbitrated, stats.site.recalled) == (3, 1, 1)


def test_where_the_site_shows_the_ai_on_request_the_read_records_that_it_was_seen(qtbot, window, demo_root, tmp_path):
    url = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    with ReadStore(url) as setup:
        setup.add_reader(Reader("AA", "Dr A"))
        setup.set_policy("arbitration", by="AA", ai="on_request")
    index = open_root(qtbot, window, demo_root)
    qtbot.waitUntil(lambda: window.ai.predictor is not None, timeout=TIMEOUT_MS)  # the model the read will name
    control, dock = window.reading_control, window.reading
    assert control.start(ReadStore(url), "AA")
    first, second = sorted(index.patients())[:2]
    wait_case(qtbot, window, first)
    assert window.viewer.blinded and dock.show_ai.isVisible()  # allowed, but not before the reader asks
    key(qtbot, window, Qt.Key.Key_F9)  # read without the AI
    wait_case(qtbot, window, second)
    assert window.viewer.blinded and dock.show_ai.isVisible()
    key(qtbot, window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not window.viewer.blinded and not dock.show_ai.isVisible() and not window.viewer.truth_shown
    key(qtbot, window, Qt.Key.Key_F9)
    control.leave()
    with ReadStore(url) as check:
        reads = {r.case_id: r for r in (check.reads(c, "AA")[0] for c in (first, second))}
    assert not reads[first].ai_shown and reads[second].ai_shown
    assert reads[second].ai_model_version == window.ai.model_version is not None


def test_a_database_server_that_stops_mid_read_loses_nothing_the_reader_wrote(qtbot, window, demo_root):
    from tests.postgres import Cluster

    cluster = Cluster()
    try:
        url = cluster.new_database()
        with ReadStore(url) as setup:
            setup.add_reader(Reader("AA", "Dr A"))
        index = open_root(qtbot, window, demo_root)
        control, dock = window.reading_control, window.reading
        assert control.start(ReadStore(url), "AA")
        case = sorted(index.patients())[0]
        wait_case(qtbot, window, case)
        choose(dock.breasts["L"].outcome, "clinical")
        choose(dock.breasts["L"].score, "5")
        choose(dock.breasts["R"].score, "2")
        cluster.stop()
        key(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        line = window.errors.messages[-1]
        assert line.startswith("Your read was not committed: the connection to the reading database")
        assert "kept on this workstation as a draft" in line and "\n" not in line
        assert dock.form.isEnabled() and dock.breasts["L"].values()["outcome"] == "clinical"  # still on screen
        cluster.start()
        key(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # the server is back: again
        assert dock.message.text().startswith("Read committed")
        control.leave()
        with ReadStore(url) as check:
            (read,) = check.reads(case, "AA")
        assert (read.breast("L").outcome, read.breast("L").score, read.breast("R").score) == ("clinical", "5", "2")
    finally:
        cluster.remove()
