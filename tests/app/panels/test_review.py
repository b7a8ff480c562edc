"""Double reading in the window: recording reviews, blinded reading, drafts, worklist filters, export, recent folders."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt

from model.reviews.protocol import BLIND, OPEN, REVEALED
from model.reviews.records import Review
from tests.app.qt_helpers import TIMEOUT_MS, open_root, show_with_ai

from app.case_text import first_case_with_truth
from app.main_window import MainWindow


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
    out = tmp_path / "reviews.csv"
    assert window.export_reviews(out) == 2
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["patient_id"] for r in rows] == patients[:2] and rows[1]["verdict"] == "disagree"
    assert window.show_review_history().table.rowCount() == 2

    # blinded reading turns the AI-flagged filter off (Alt+5 too), and shows a reader only their own reviews
    window.worklist.set_filter("AI-flagged")
    window.set_blinded_mode(True)
    assert window.worklist.filter.currentText() == "All patients"
    qtbot.keyClick(window.viewer.canvas, Qt.Key.Key_5, Qt.KeyboardModifier.AltModifier)
    assert window.worklist.filter.currentText() == "All patients" and "Blinded" in window.statusBar().currentMessage()
    window.review.reader.setText("Other reader")
    window.review.reader.editingFinished.emit()
    assert window.worklist.review_status(patients[1]) == "unread"  # R's disagreement is not shown to another reader
    assert window.show_review_history().table.rowCount() == 0
    window.review.reader.setText("R")
    window.review.reader.editingFinished.emit()
    assert window.worklist.review_status(patients[1]) == "disagreement"
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


def test_a_folder_opened_by_a_relative_path_is_remembered_absolute_and_once(qtbot, viewer_window, demo_root,
                                                                             tmp_path, monkeypatch):
    link = tmp_path / "studies"
    link.symlink_to(demo_root)
    monkeypatch.chdir(demo_root.parent)
    open_root(qtbot, viewer_window, demo_root.name)  # typed relative, as `python main.py .demo/CBIS-DDSM` does
    open_root(qtbot, viewer_window, str(link))  # the same folder by another name
    open_root(qtbot, viewer_window, f"./{demo_root.name}/")
    recent = viewer_window.settings.recent()
    assert recent == [str(demo_root.resolve())]
    assert str(demo_root.resolve()) in viewer_window.windowTitle()
    viewer_window.close()
    monkeypatch.chdir(tmp_path)  # the app starts elsewhere: the entry still opens
    again = make_window(qtbot)
    try:
        actions = [a for a in again.actions.recent_menu.actions() if str(demo_root.resolve()) in a.text()]
        assert len(actions) == 1
        with qtbot.waitSignal(again.indexReady, timeout=TIMEOUT_MS):
            actions[0].trigger()
        assert again.worklist.patients and not again.errors.messages
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


def test_a_review_log_edited_behind_the_apps_back_is_reported_at_start_and_nothing_is_recorded(qtbot, monkeypatch,
                                                                                               tmp_path, demo_root):
    import sqlite3

    from model.reviews.store import ReviewStore

    data = tmp_path / "tampered-data"
    monkeypatch.setenv("BCIR_DATA_DIR", str(data))
    monkeypatch.setenv("BCIR_MODEL", "none")
    store = ReviewStore()
    for verdict in ("agree", "disagree"):
        store.record(Review(reader="Dr A", patient_id="P_1", verdict=verdict, birads="2", comment="first",
                            model_version="m", ai_score_shown=0.4, ai_shown=True))
    store.close()
    with sqlite3.connect(data / "reviews.sqlite") as conn:  # someone with file access rewrites a verdict
        conn.execute("DROP TRIGGER reviews_no_update")
        conn.execute("UPDATE reviews SET verdict = 'agree' WHERE verdict = 'disagree'")
    window = make_window(qtbot)
    try:
        assert window.reviews is None and not window.review.available
        lines = [m for m in window.errors.messages if "Reviews cannot be stored" in m]
        assert len(lines) == 1 and "hash chain" in lines[0] and "\n" not in lines[0]
        index = open_root(qtbot, window, demo_root)
        show_case(qtbot, window, next(iter(index.patients())))
        assert "cannot be stored" in window.review.title.text()
    finally:
        window.close()


def test_nothing_leaks_before_the_own_read(qtbot, ai_window, demo_root, tmp_path):
    """Other readers' reviews, the findings of the last case, and a truth mask's problem stay hidden while blind."""
    window = ai_window
    index = open_root(qtbot, window, demo_root)
    patient_id = first_case_with_truth(index)
    window.reviews.record(Review(reader="Dr A", patient_id=patient_id, verdict="disagree", birads="5",
                                 comment="spiculated mass", ai_shown=True, ai_score_shown=0.93))
    window.review.reader.setText("Dr B")
    window.review.reader.editingFinished.emit()
    window.set_blinded_mode(True)
    show_with_ai(qtbot, window, patient_id)
    assert window.review.phase == BLIND
    assert window.review.history.topLevelItemCount() == 0  # Dr A's verdict, score and comment are not shown
    assert window.worklist.review_status(patient_id) == "unread"
    # a truth mask that cannot be drawn is not announced (its reason names the pathology)
    pane = next(p for p in window.viewer.visible_panes() if p.loaded is not None)
    pane.loaded.problems.append("R CC MALIGNANT mass (abnormality 1): mask missing")
    pane.set_problems_visible(not window.viewer.blinded)
    assert "not drawn" not in pane.label and pane.image_item.toolTip() == ""
    # opening another folder mid-case does not lift the blind on the old findings
    with qtbot.waitSignal(window.indexReady, timeout=TIMEOUT_MS):
        window.open_path(demo_root)
    assert window.findings.score() is None and "Case score" not in window.findings.summary.text()
    assert not window.actions.truth.isEnabled()


def test_a_case_seen_unblinded_cannot_be_read_blind(qtbot, ai_window, demo_root):
    window = ai_window
    window.review.reader.setText("Dr C")
    window.review.reader.editingFinished.emit()
    index = open_root(qtbot, window, demo_root)
    first, second = list(index.patients())[:2]
    show_with_ai(qtbot, window, first)  # open reading: AI and truth on screen
    window.set_blinded_mode(True)
    assert window.review.phase == OPEN and "seen this case unblinded" in window.review.title.text()
    choose_birads(window, "2")
    assert window.review.record_own() is None and window.reviews.count() == 0
    show_with_ai(qtbot, window, second)
    assert window.review.phase == BLIND  # never seen: blind
    show_with_ai(qtbot, window, first)
    assert window.review.phase == OPEN  # remembered (also across restarts: it is saved with the drafts)


def test_the_reader_changing_name_is_caught_before_recording(qtbot, ai_window, demo_root):
    window = ai_window
    window.review.reader.setText("Dr A")
    window.review.reader.editingFinished.emit()
    index = open_root(qtbot, window, demo_root)
    patient_id = next(iter(index.patients()))
    show_with_ai(qtbot, window, patient_id)
    choose_birads(window, "3")
    qtbot.keyClicks(window.review.comment, "Dr A's unfinished note")
    window.set_blinded_mode(True)  # Dr A saw the case open: it stays open for Dr A
    assert window.review.phase == OPEN
    window.review.reader.setText("Dr B")  # typed, no Enter yet, then straight to Disagree
    assert window.review.record_verdict("disagree") is None and window.reviews.count() == 0
    assert "reader changed" in window.review.message.text()
    assert window.review.phase == BLIND  # Dr B has not seen it: blind for Dr B
    assert window.review.comment.toPlainText() == ""  # and Dr A's draft is not Dr B's
    window.review.reader.setText("Dr A")
    window.review.reader.editingFinished.emit()
    assert window.review.comment.toPlainText() == "Dr A's unfinished note"


def test_agree_waits_for_the_whole_case_and_a_model_switch_clears_the_score(qtbot, ai_window, demo_root, model_file):
    window = ai_window
    window.review.reader.setText("Dr A")
    window.review.reader.editingFinished.emit()
    index = open_root(qtbot, window, demo_root)
    patient_id = next(iter(index.patients()))
    window.review.set_case(patient_id)
    window.review.set_ai(0.4, "test-discs", complete=False)  # one view answered of two
    assert not window.review.agree_button.isEnabled() and "waiting" in window.review.ai_line.text()
    show_with_ai(qtbot, window, patient_id)
    assert window.review.agree_button.isEnabled() and window.review.ai_complete
    window.ai_control.set_model_path(model_file)  # another model: the score shown was the old one's
    assert window.review.ai_score is None and not window.review.agree_button.isEnabled()


def test_typing_in_the_review_fields_never_triggers_viewer_keys(qtbot, viewer_window, demo_root):
    window = viewer_window
    index = open_root(qtbot, window, demo_root)
    patient_id = next(iter(index.patients()))
    show_case(qtbot, window, patient_id)
    preset = window.viewer.preset_index
    combo = window.review.birads
    key(qtbot, window, Qt.Key.Key_F2)  # F2 stays the app's: it puts the focus on BI-RADS
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_4)  # chooses 4A, not window preset 4
    assert combo.currentData() == "4A" and window.viewer.preset_index == preset
    qtbot.keyClick(combo, Qt.Key.Key_Space)  # opens the list, as a combo box does; not "next patient"
    combo.hidePopup()
    qtbot.keyClick(window.review.comment, Qt.Key.Key_PageDown)
    qtbot.keyClick(window.review.comment, Qt.Key.Key_Escape)
    assert window.viewer.patient_id == patient_id and window.worklist.current_patient() == patient_id
    qtbot.mouseClick(window.viewer.canvas.viewport(), Qt.MouseButton.LeftButton)  # back to the images: they take the focus
    assert window.viewer.canvas.hasFocus() or window.viewer.canvas.viewport().hasFocus()
    key(qtbot, window, Qt.Key.Key_N)  # and the viewer's keys work again
    qtbot.waitUntil(lambda: window.worklist.current_patient() != patient_id, timeout=5000)


def test_the_reading_mode_and_the_cases_seen_unblinded_are_kept_in_the_review_log(qtbot, viewer_window, demo_root):
    """Not in the settings: any client of the log (another window, a script) sees them and is held to them."""
    from PySide6.QtCore import QSettings

    from model.errors import ReviewRefused
    from model.reviews.protocol import own_read
    from model.reviews.store import ReviewStore

    window = viewer_window
    window.review.reader.setText("Dr C")
    window.review.reader.editingFinished.emit()
    index = open_root(qtbot, window, demo_root)
    seen = next(iter(index.patients()))
    show_case(qtbot, window, seen)  # open reading: the case is on screen unblinded
    window.set_blinded_mode(True)
    folder = window.settings.folder
    assert QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat).value("review/blinded") is None
    assert not (folder / "cases-seen-unblinded.json").exists()
    other = ReviewStore(window.reviews.path)
    try:
        assert other.blinded_mode and other.seen_unblinded("Dr C", seen)
        with pytest.raises(ReviewRefused, match="seen this case unblinded"):
            other.record(own_read("Dr C", seen, "2"))
    finally:
        other.close()


def test_what_an_older_version_kept_in_the_settings_is_taken_over_by_the_log(qtbot, monkeypatch, demo_root):
    """The reading mode in settings.ini and the cases seen unblinded in cases-seen-unblinded.json move into the
    review log at the first start, and leave the settings."""
    import json

    from PySide6.QtCore import QSettings

    from model.data.study_index import build_index
    from model.fileio import user_data_dir

    monkeypatch.setenv("BCIR_MODEL", "none")
    first, second = list(build_index(demo_root).patients())[:2]
    folder = user_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    old = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    old.setValue("review/reader", "Dr C")
    old.setValue("review/blinded", "true")
    old.sync()
    (folder / "cases-seen-unblinded.json").write_text(json.dumps([f"Dr C\t{first}"]))
    window = make_window(qtbot)
    try:
        assert window.actions.blinded.isChecked() and window.reviews.blinded_mode
        assert window.reviews.seen_unblinded("Dr C", first) and not window.reviews.seen_unblinded("Dr C", second)
        assert not (folder / "cases-seen-unblinded.json").exists()
        assert QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat).value("review/blinded") is None
        open_root(qtbot, window, demo_root)
        show_case(qtbot, window, first)
        assert window.review.phase == OPEN and "seen this case unblinded" in window.review.title.text()
        show_case(qtbot, window, second)
        assert window.review.phase == BLIND
    finally:
        window.close()
