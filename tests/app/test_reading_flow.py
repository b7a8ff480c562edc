"""A reading session as a radiologist has it: case after case with the keyboard while the AI works ahead.

Each case after the first comes through the prefetch path (its images and its
AI results are ready in memory before N is pressed), and every panel is
checked on every case: the panes' marks, Findings, Review and the worklist.
"""

from __future__ import annotations

import html

import pytest
from PySide6.QtCore import Qt

from model.reviews.protocol import BLIND, OPEN, REVEALED
from tests.app.qt_helpers import TIMEOUT_MS, open_root, show_with_ai

from app.case_text import percent
from app.main_window import MainWindow

CASES = 4  # the first, then three through the prefetch path


@pytest.fixture
def window(qtbot, model_file, cache_dir):
    w = MainWindow(model_path=model_file)
    w.resize(1500, 950)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.ai.predictor is not None, timeout=TIMEOUT_MS)
    yield w
    w.close()


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(window.viewer.canvas, k, modifier)


def cc_paths(window, patient_id) -> list[str]:
    from app.viewer.hanging import cc_row

    return [i.path for i in cc_row(window.worklist.patients[patient_id])]


def wait_prefetched(qtbot, window, patient_id) -> None:
    """The next case's images are in the image cache and its AI results in memory: N will show it at once."""
    paths = [i.path for i in window.worklist.patients[patient_id]]
    qtbot.waitUntil(lambda: all(p in window.loader.cache for p in paths)
                    and all(window.ai.cached(p) is not None for p in cc_paths(window, patient_id)), timeout=TIMEOUT_MS)


def panel_problems(window, patient_id) -> list[str]:
    """What is wrong with the panels for the case on screen ([] when everything shows its result)."""
    problems = []
    findings, review = window.findings, window.review
    paths = cc_paths(window, patient_id)
    if window.viewer.patient_id != patient_id:
        problems.append(f"viewer shows {window.viewer.patient_id}")
    if set(window.viewer.ai) != set(paths):
        problems.append("panes lack the AI marks")
    if findings.patient_id != patient_id or set(findings.whole_scores) != set(paths):
        problems.append(f"findings has results for {sorted(findings.whole_scores)}")
    summary = findings.summary.text()
    for stale in ("waiting", "pending"):
        if stale in summary:
            problems.append(f"findings summary says {stale}: {summary!r}")
    for path in paths:
        row = findings.image_row(path)
        if row is None or "pending" in row.text(0):
            problems.append(f"findings row of {path} is {row.text(0) if row else None!r}")
    if "AI waiting" in window.ai_state_label.text():
        problems.append(f"status says {window.ai_state_label.text()!r}")
    score = findings.score()
    if score is None or review.ai_score != pytest.approx(score) or not review.ai_complete:
        problems.append(f"review has score {review.ai_score} complete={review.ai_complete}, findings {score}")
    elif "AI score shown" not in review.ai_line.text() or percent(score) not in review.ai_line.text():
        problems.append(f"review says {review.ai_line.text()!r}")
    trust = window.ai.trust  # how far the malignancy call can be trusted: beside the score in both panels
    if trust is None:
        problems.append("no line on how far the model's malignancy call can be trusted")
    else:
        for where, text in (("findings summary", summary), ("review", review.ai_line.text())):
            # the headline, then each lesion type on a line of its own, orange where its CI reaches 0.5
            for part, warn in ((trust.headline, trust.warn), *((f"· {t.text}", t.warn) for t in trust.by_type)):
                colour = "#ffb050" if warn else "#aaaaaa"
                if f'<span style="color:{colour}">{html.escape(part)}' not in text:
                    problems.append(f"{where} lacks {part!r} in {colour}: {text!r}")
    if review.phase in (OPEN, REVEALED) and not (review.agree_button.isEnabled() and review.disagree_button.isEnabled()):
        problems.append("agree/disagree disabled")
    if window.worklist.ai_score(patient_id) != pytest.approx(score):
        problems.append("worklist score differs")
    return problems


def assert_panels_filled(qtbot, window, patient_id) -> None:
    """Give the event loop a moment (results may arrive from a worker), then name every panel left behind."""
    try:
        qtbot.waitUntil(lambda: panel_problems(window, patient_id) == [], timeout=5_000)
    except Exception:  # noqa: BLE001 - the assertion below says what is wrong
        pass
    assert panel_problems(window, patient_id) == []


def test_walking_cases_with_n_through_the_prefetch_path_fills_every_panel(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root)
    patients = list(index.patients())
    assert len(patients) >= CASES
    show_with_ai(qtbot, window, patients[0])
    assert panel_problems(window, patients[0]) == []
    for current, following in zip(patients[: CASES - 1], patients[1:CASES]):
        wait_prefetched(qtbot, window, following)
        inferred = len(window.ai.inferred)
        with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid, f=following: pid == f):
            key(qtbot, window, Qt.Key.Key_N)
        assert_panels_filled(qtbot, window, following)
        assert len(window.ai.inferred) == inferred, "the case came from memory: nothing ran again"
        assert "from the cache" not in window.ai_state_label.text() or "view" in window.ai_state_label.text()
    # and back: P goes to the previous case, shown from memory as well
    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS):
        key(qtbot, window, Qt.Key.Key_P)
    assert_panels_filled(qtbot, window, patients[CASES - 2])
    assert not window.errors.messages


def test_blinded_reading_walks_cases_and_each_reveal_shows_the_whole_result(qtbot, window, demo_root):
    window.review.reader.setText("Dr Walker")
    window.review.reader.editingFinished.emit()
    key(qtbot, window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    index = open_root(qtbot, window, demo_root)
    patients = list(index.patients())[:CASES]
    show_with_ai(qtbot, window, patients[0])
    for n, patient_id in enumerate(patients):
        if n:
            wait_prefetched(qtbot, window, patient_id)
            with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid, p=patient_id: pid == p):
                key(qtbot, window, Qt.Key.Key_N)
        review = window.review
        assert review.phase == BLIND and "Blinded" in window.findings.summary.text()
        key(qtbot, window, Qt.Key.Key_F2)  # F2 puts the focus on BI-RADS; the reader picks 2 from the keyboard
        qtbot.keyClick(review.birads, Qt.Key.Key_2)
        assert review.birads.currentData() == "2"
        key(qtbot, window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert review.phase == REVEALED
        assert_panels_filled(qtbot, window, patient_id)
        key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        verdicts = [r.verdict for r in window.reviews.history(patient_id)]
        assert verdicts == ["own", "agree"], verdicts
    assert not window.errors.messages


def test_a_prefetched_case_that_fails_never_interrupts_and_says_why_when_opened(qtbot, window, demo_root, tmp_path):
    import shutil
    from pathlib import Path

    from model.data.study_index import build_index

    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    first, second = list(build_index(root).patients())[:2]
    victim = next(i for i in build_index(root).patients()[second] if (i.laterality, i.view) == ("L", "CC"))
    data = Path(victim.path).read_bytes()
    open_root(qtbot, window, root)
    # cut after indexing (the index checks that the pixel data is all there, so only loading can tell now)
    Path(victim.path).write_bytes(data[: len(data) - 5000])
    show_with_ai(qtbot, window, first)
    # the next case is prefetched while the reader reads this one: its bad view fails in the background
    qtbot.waitUntil(lambda: victim.path in window.loader._failed and window.ai.failure(victim.path) is not None,
                    timeout=TIMEOUT_MS)
    assert window.errors.messages == [], "a background case's error reached the reader"
    assert window.errors._box is None or not window.errors._box.isVisible()
    assert panel_problems(window, first) == []
    assert second not in window.statusBar().currentMessage()

    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid: pid == second):
        key(qtbot, window, Qt.Key.Key_N)
    pane = window.viewer.pane_of(victim.path)
    reason = window.ai.failure(victim.path).message
    assert window.viewer.is_complete(), "the case is shown, the bad view with its reason"
    assert pane.loaded is None and window.loader._failed[victim.path].message in pane.note
    row = window.findings.image_row(victim.path)
    assert row.text(0).endswith(f"AI could not run: {reason}") and "pending" not in row.text(0)
    other = next(p for p in cc_paths(window, second) if p != victim.path)
    assert other in window.findings.whole_scores and window.review.ai_complete
    assert window.review.agree_button.isEnabled()
    lines = window.errors.messages
    assert lines and all(second in line and "\n" not in line and "Traceback" not in line for line in lines)
    assert any("AI could not run on L CC" in line for line in lines)
    assert window.errors._box is None or not window.errors._box.isVisible(), "no box: the panels say it"
