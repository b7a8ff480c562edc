"""Double reading in the window: recording reviews, blinded reading, drafts, worklist filters, export, recent folders."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from model.reviews import Review
from model.weights import save_model
from tests.app.qt_helpers import TIMEOUT_MS, open_root, show_with_ai

from app.main_window import MainWindow, first_case_with_truth
from app.review_panel import BLIND, OPEN, REVEALED


@pytest.fixture(scope="session")
def model_file(tmp_path_factory, disc_model) -> Path:
    return save_model(disc_model.net, disc_model.card, tmp_path_factory.mktemp("model") / "discs.safetensors")


def make_window(qtbot, model_path=None) -> MainWindow:
    w = MainWindow(model_path=model_path)
    w.resize(1500, 950)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def show_case(qtbot, window, patient_id):
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        assert window.select_patient(patient_id)


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(window.viewer.canvas, k, modifier)


def choose_birads(window, value):
    combo = window.review.birads
    combo.setCurrentIndex(combo.findData(value))


def truth_and_marks_visible(window) -> tuple[bool, bool]:
    panes = [p for p in window.viewer.visible_panes() if p.loaded is not None]
    truth = any(item.isVisible() for p in panes for item in p.truth_items)
    marks = any(p.prediction.outline.isVisible() for p in panes)
    return truth, marks


@pytest.fixture
def ai_window(qtbot, model_file):
    w = make_window(qtbot, model_file)
    qtbot.waitUntil(lambda: w.ai.predictor is not None, timeout=TIMEOUT_MS)
    yield w
    w.close()


def test_a_review_is_stored_with_what_was_shown_and_read_back_after_a_restart(qtbot, ai_window, model_file, demo_root):
    window = ai_window
    index = open_root(qtbot, window, demo_root)
    patient_id = first_case_with_truth(index)
    show_with_ai(qtbot, window, patient_id)
    review = window.review
    assert review.phase == OPEN and window.findings.score() is not None
    shown_score = window.findings.score()

    qtbot.keyClicks(review.reader, "Dr A. Reader")
    review.reader.editingFinished.emit()
    choose_birads(window, "4B")
    # typed text stays in the comment: N, P, Space and digits are viewer keys everywhere else
    qtbot.keyClicks(review.comment, "Spiculated mass, N 12 P")
    assert window.viewer.patient_id == patient_id
    key(qtbot, window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)

    store = window.reviews
    (saved,) = store.history(patient_id)
    assert (saved.reader, saved.verdict, saved.birads, saved.comment) == ("Dr A. Reader", "disagree", "4B", "Spiculated mass, N 12 P")
    assert saved.ai_shown and saved.ai_score_shown == pytest.approx(shown_score)
    assert saved.model_version == "test-discs" and saved.phase == "open" and not saved.blinded
    assert review.comment.toPlainText() == "" and review.history.topLevelItemCount() == 1
    assert window.worklist.review_status(patient_id) == "disagreement"
    assert window.worklist._items[patient_id].text(3) == "disagrees"
    window.close()

    again = make_window(qtbot, model_file)
    try:
        open_root(qtbot, again, demo_root)
        assert again.worklist.review_status(patient_id) == "disagreement"  # from the database, at start
        assert again.review.reader.text() == "Dr A. Reader"  # the reader's name is remembered
        show_case(qtbot, again, patient_id)
        rows = again.review.history
        assert rows.topLevelItemCount() == 1
        assert rows.topLevelItem(0).text(2) == "disagrees with AI" and rows.topLevelItem(0).text(3) == "4B"
        assert rows.topLevelItem(0).text(6) == "Spiculated mass, N 12 P"
        # the worklist filter on disagreement shows this patient only
        qtbot.keyClick(again.viewer.canvas, Qt.Key.Key_4, Qt.KeyboardModifier.AltModifier)
        assert again.worklist.filter.currentText() == "Disagreement with AI"
        assert again.worklist.visible_patients() == [patient_id]
        qtbot.keyClick(again.viewer.canvas, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)  # unread
        assert patient_id not in again.worklist.visible_patients()
        assert len(again.worklist.visible_patients()) == len(again.worklist.patients) - 1
    finally:
        again.close()


def test_blinded_reading_hides_ai_and_truth_until_the_own_read_then_stores_both(qtbot, ai_window, model_file, demo_root):
    window = ai_window
    window.review.reader.setText("Reader B")
    window.review.reader.editingFinished.emit()
    key(qtbot, window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert window.actions.blinded.isChecked() and window.review.blinded_mode
    index = open_root(qtbot, window, demo_root)
    patient_id = first_case_with_truth(index)
    show_with_ai(qtbot, window, patient_id)
    review, store = window.review, window.reviews

    assert review.phase == BLIND
    assert window.viewer.ai, "the AI ran: its result waits behind the blind"
    assert truth_and_marks_visible(window) == (False, False)
    assert not window.findings.tree.isVisibleTo(window.findings) and "Blinded" in window.findings.summary.text()
    assert window.worklist.tree.isColumnHidden(1) and window.worklist.tree.isColumnHidden(2)
    assert not window.actions.truth.isEnabled() and not window.actions.prediction.isEnabled()
    key(qtbot, window, Qt.Key.Key_T)  # the truth key cannot lift the blind
    assert truth_and_marks_visible(window) == (False, False)
    # agreeing before the own read is refused, and nothing is stored
    key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert store.count() == 0 and "own read first" in review.message.text()
    # without a BI-RADS the own read is refused too
    key(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert store.count() == 0 and "BI-RADS" in review.message.text()

    choose_birads(window, "3")
    qtbot.keyClicks(review.comment, "probably benign")
    qtbot.keyClick(review.comment, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # works from the comment box
    assert review.phase == REVEALED
    assert truth_and_marks_visible(window) == (True, True)
    assert window.findings.tree.isVisibleTo(window.findings) and window.actions.truth.isEnabled()

    shown_score = window.findings.score()
    choose_birads(window, "4A")  # the reader may revise the category after seeing the AI
    key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    own, verdict = store.history(patient_id)
    assert (own.verdict, own.phase, own.ai_shown, own.ai_score_shown, own.birads) == ("own", "blinded", False, None, "3")
    assert own.comment == "probably benign"
    assert (verdict.verdict, verdict.phase, verdict.blinded, verdict.birads) == ("agree", "unblinded", True, "4A")
    assert verdict.ai_score_shown == pytest.approx(shown_score)
    assert review.phase == OPEN
    window.close()

    # After a restart blinded reading is still on: a case already read stays revealed, a new one is blind.
    again = make_window(qtbot, model_file)
    try:
        qtbot.waitUntil(lambda: again.ai.predictor is not None, timeout=TIMEOUT_MS)
        assert again.actions.blinded.isChecked()
        index = open_root(qtbot, again, demo_root)
        show_with_ai(qtbot, again, patient_id)
        assert again.review.phase == OPEN and truth_and_marks_visible(again) == (True, True)
        other = next(p for p in index.patients() if p != patient_id)
        show_with_ai(qtbot, again, other)
        assert again.review.phase == BLIND and truth_and_marks_visible(again)[1] is False
        key(qtbot, again, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)  # blinded reading off: all shown
        assert again.review.phase == OPEN and not again.worklist.tree.isColumnHidden(2)
    finally:
        again.close()


@pytest.fixture
def viewer_window(qtbot, monkeypatch):
    monkeypatch.setenv("BCIR_MODEL", "none")
    w = make_window(qtbot)
    yield w
    w.close()


def test_without_a_name_or_an_ai_result_nothing_is_recorded_and_the_reader_is_told(qtbot, viewer_window, demo_root):
    window = viewer_window
    index = open_root(qtbot, window, demo_root)
    show_case(qtbot, window, next(iter(index.patients())))
    choose_birads(window, "2")
    window.record_verdict("agree")
    assert window.reviews.count() == 0 and "no result" in window.review.message.text()
    assert not window.review.agree_button.isEnabled()


def test_drafts_survive_moving_on_and_a_restart(qtbot, viewer_window, demo_root):
    window = viewer_window
    index = open_root(qtbot, window, demo_root)
    first, second = list(index.patients())[:2]
    show_case(qtbot, window, first)
    choose_birads(window, "5")
    qtbot.keyClicks(window.review.comment, "half-written note")
    show_case(qtbot, window, second)
    assert window.review.comment.toPlainText() == "" and window.review.birads.currentIndex() == -1
    show_case(qtbot, window, first)
    assert window.review.comment.toPlainText() == "half-written note" and window.review.birads.currentData() == "5"
    window.close()  # no wait for the debounce timer: closing writes the drafts

    again = make_window(qtbot)
    try:
        open_root(qtbot, again, demo_root)
        show_case(qtbot, again, first)
        assert again.review.comment.toPlainText() == "half-written note"
        assert again.review.birads.currentData() == "5"
    finally:
        again.close()


def test_worklist_filters_and_export(qtbot, viewer_window, demo_root, tmp_path):
    window = viewer_window
    index = open_root(qtbot, window, demo_root)
    patients = list(index.patients())
    store = window.reviews
    store.record(Review(reader="R", patient_id=patients[0], verdict="agree", birads="2", ai_shown=True, ai_score_shown=0.1))
    store.record(Review(reader="R", patient_id=patients[1], verdict="disagree", birads="4C", ai_shown=True, ai_score_shown=0.2))
    window.worklist.set_review_statuses(store.statuses())
    window.worklist.set_ai_score(patients[2], "x.dcm", 0.9)
    window.worklist.set_ai_score(patients[3], "y.dcm", 0.1)
    expect = {
        "All patients": patients,
        "Unread": patients[2:],
        "Reviewed": patients[:2],
        "Disagreement with AI": patients[1:2],
        "AI-flagged": patients[2:3],
    }
    for name, wanted in expect.items():
        window.worklist.set_filter(name)
        assert window.worklist.visible_patients() == wanted, name
    # N walks the filtered list only
    window.worklist.set_filter("Unread")
    window.step_patient(+1)
    assert window.worklist.current_patient() == patients[2]
    # blinded reading turns the AI-flagged filter off
    window.worklist.set_filter("AI-flagged")
    window.set_blinded_mode(True)
    assert window.worklist.filter.currentText() == "All patients"

    out = tmp_path / "reviews.csv"
    assert window.export_reviews(out) == 2
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["patient_id"] for r in rows] == patients[:2] and rows[1]["verdict"] == "disagree"
    assert window.show_review_history().table.rowCount() == 2


def test_the_worklist_fills_while_indexing_runs(qtbot, viewer_window, demo_root):
    window = viewer_window
    listed_before_done: list[int] = []
    original = window._on_index_progress

    def spy(worker, event):
        original(worker, event)
        if window.index is None:
            listed_before_done.append(len(window.worklist.patients))

    window._on_index_progress = spy
    index = open_root(qtbot, window, demo_root)
    assert any(n > 0 for n in listed_before_done), "patients were listed before indexing finished"
    assert list(window.worklist.patients) == list(index.patients())


def test_recent_folders_are_remembered_and_open(qtbot, viewer_window, demo_root):
    open_root(qtbot, viewer_window, demo_root)
    assert viewer_window.settings.recent()[0] == str(demo_root)
    viewer_window.close()
    again = make_window(qtbot)
    try:
        actions = [a for a in again.actions.recent_menu.actions() if str(demo_root) in a.text()]
        assert len(actions) == 1
        with qtbot.waitSignal(again.indexReady, timeout=TIMEOUT_MS):
            actions[0].trigger()
        assert again.worklist.patients
    finally:
        again.close()


def test_a_broken_review_database_is_one_line_and_the_viewer_still_works(qtbot, monkeypatch, tmp_path, demo_root):
    data = tmp_path / "broken-data"
    data.mkdir()
    (data / "reviews.sqlite").write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("BCIR_DATA_DIR", str(data))
    monkeypatch.setenv("BCIR_MODEL", "none")
    window = make_window(qtbot)
    try:
        assert window.reviews is None and not window.review.available
        assert any("Reviews cannot be stored" in m for m in window.errors.messages)
        index = open_root(qtbot, window, demo_root)
        show_case(qtbot, window, next(iter(index.patients())))
        assert "cannot be stored" in window.review.title.text()
        window.record_verdict("agree")  # refused with a reason, no exception
        assert "No case to review" in window.review.message.text() or "cannot" in window.review.title.text()
        assert window.show_review_history() is None
    finally:
        window.close()
