"""Reading mode: connects the reading session (model.reading.session) to the window. It chooses the reader, shows the
mode at all times, hides the ground truth everywhere and the AI as the site's policy says, passes the reader's
input to the session and shows what it answers. No rule of the protocol lives here: the store enforces them."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox

from model.errors import DataError, ReadRefused, ReadStoreError
from model.reading.reads import Finding, Mark
from model.reading.session import ReadingSession
from model.reading.store import ReadStore, Worklist
from model.reading.transfer import add_cases_of_index, image_key
from model.reading.vocab import SIDES

from app.dialogs.reader_dialog import ReaderDialog
from app.dialogs.reading_stats_dialog import ReadingStatsDialog
from app.panels.reading_panel import OUTCOME_WORDS, read_text

if TYPE_CHECKING:
    from app.main_window import MainWindow

ROLE_HEADERS = {"first": "first read", "second": "second read (blind to the first)", "arbitration": "arbitration",
                "consensus": "consensus with the other reader", "read": "your read is in", "done": "decided"}
REFRESH_MS = 30_000  # the worklists' counts and waiting times, and other workstations' progress


class ReadingController(QObject):
    modeChanged = Signal(bool)  # True: reading mode; False: audit mode

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.dock = window.reading
        self.session: ReadingSession | None = None
        self.names: dict[str, str] = {}
        self.marking: int | None = None  # the finding whose mark the next click places
        self._geometry: dict = {}  # image path -> its breast's Landmarks (None: no breast found)
        self._lists: dict | None = None  # the worklists as last read from the store
        self._passed: set[str] = set()  # cases committed or parked in this session: "next" moves past them
        self._ai_recorded: set[tuple[str, str, str]] = set()  # (path, model version, score) stored this session
        self.dialog: ReaderDialog | None = None
        self.leave_prompt: QMessageBox | None = None
        self.stats_dialog: ReadingStatsDialog | None = None
        self.base_title = window.windowTitle()
        self.mode_label = QLabel()
        self.mode_label.setObjectName("readingMode")
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh_worklists)
        d = self.dock
        d.caseChosen.connect(window.select_patient)
        d.breastChanged.connect(self._on_breast_changed)
        d.findingAdded.connect(self.add_finding)
        d.markRequested.connect(self.start_mark)
        d.commitRequested.connect(self.commit)
        d.normalRequested.connect(self.normal_next)
        d.parkRequested.connect(self.park_next)
        d.changeRequested.connect(self.change)
        d.arbitrationRequested.connect(self.arbitrate)
        d.aiRequested.connect(self.request_ai)
        window.ai.resultReady.connect(self._record_ai_result)
        window.viewer.markClicked.connect(self._on_mark)
        self._show_mode()

    @property
    def reading(self) -> bool:
        return self.session is not None

    # -- entering and leaving reading mode -------------------------------------------------------------------

    def ask_start(self) -> ReaderDialog:
        """Reading → Start reading: the database and the reader, from the site's list."""
        settings = self.window.settings
        self.dialog = ReaderDialog(settings.reads_db, settings.reading_reader, self.window)

        def done(result: int) -> None:
            dialog, self.dialog = self.dialog, None
            if result == QDialog.DialogCode.Accepted and dialog.store is not None:
                settings.reads_db = dialog.url.text().strip()
                settings.reading_reader = dialog.reader
                self.start(dialog.store, dialog.reader)
                self.window.activateWindow()  # the keys go back to the images and the read

        self.dialog.finished.connect(done)
        self.dialog.open()
        return self.dialog

    def start(self, store: ReadStore, reader: str) -> bool:
        """Read as ``reader``: the open folder's cases go on the site's list, and the window turns to reading mode."""
        try:
            session = ReadingSession(store, reader, login=getpass.getuser())
            self.names = {r.code: r.name for r in store.readers()}
            index = self.window.index
            if index is not None:
                add_cases_of_index(store, index, f"labels of {index.root}")
        except (ReadRefused, ReadStoreError) as exc:
            self.window.errors.show(str(exc), context="Reading cannot start")
            return False
        if self.session is not None:
            self.session.store.close()
        self.session = session
        self._passed = set()
        self._apply_mode(True)
        self.dock.set_scale(session.scale)
        self.refresh_worklists()
        self.timer.start()
        patient = self.window.viewer.patient_id
        if patient:
            self.open_case(patient)
        elif not self._open_first_waiting():
            self.dock.show_nothing(f"Reading as {self._me()}: choose a case in your worklists")
        return True

    def _open_first_waiting(self) -> bool:
        """No case on screen: the oldest case waiting for this reader (first reads, then second, then arbitration)."""
        for n, role in enumerate(("first", "second", "arbitration")):
            waiting = [i.case_id for i in (self._lists or {}).get(role, Worklist(role, "")).items
                       if i.case_id in self.window.worklist.patients]
            if waiting:
                self.dock.tabs.setCurrentIndex(n)
                return self.window.select_patient(waiting[0])
        return False

    def show_stats(self) -> ReadingStatsDialog | None:
        """Reading → Statistics: the figures of the database this reader reads in."""
        if not self.reading:
            return None
        self.stats_dialog = ReadingStatsDialog(self.session.store, self.window)
        self.stats_dialog.show()
        return self.stats_dialog

    def ask_leave(self) -> QMessageBox | None:
        """Reading → Leave reading mode, after a confirmation; an unsaved read is parked, and the leaving logged."""
        if not self.reading:
            return None
        self.leave_prompt = QMessageBox(QMessageBox.Icon.Question, "Leave reading mode",
                                        "Leave reading mode? The audit view shows the ground truth and the AI. A read "
                                        "not yet committed is parked on this workstation, and your leaving is logged.",
                                        QMessageBox.StandardButton.Cancel, self.window)
        leave = self.leave_prompt.addButton("Leave reading mode", QMessageBox.ButtonRole.AcceptRole)

        def chosen(button) -> None:
            self.leave_prompt = None
            if button is leave:
                self.leave()

        self.leave_prompt.buttonClicked.connect(chosen)
        self.leave_prompt.open()
        return self.leave_prompt

    def leave(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        self.timer.stop()
        self.window.viewer.set_mark_mode(False)
        try:
            session.leave_reading()
        except (ReadRefused, ReadStoreError) as exc:
            self.window.errors.show(f"{exc}; the read in progress is kept on this workstation",
                                    context="Leaving reading mode was not logged")
        session.store.close()
        self._apply_mode(False)

    def close(self) -> None:
        """The window closes: a read with input is parked (not lost); the store is closed."""
        if not self.reading:
            return
        self.timer.stop()
        if self.session.draft is not None and self._draft_has_input():
            self._park_quietly()
        self.session.store.close()

    def _apply_mode(self, reading: bool) -> None:
        w = self.window
        w.viewer.set_reading(reading)
        if not reading:
            w.viewer.set_marks({})
        w.worklist.set_reading(reading)
        if not reading:
            w.worklist.set_blinded(w.review.blinded_mode)
        w.findings.set_reading(reading)
        w.findings.setVisible(not reading)
        w.review.setVisible(not reading)
        self.dock.setVisible(reading)
        for action in w.actions.review_actions:
            action.setEnabled(not reading)
        for action in w.actions.reading_actions:
            action.setEnabled(reading)
        w.actions.start_reading.setEnabled(not reading)
        if reading:
            if w.actions.truth.isChecked():
                w.actions.truth.setChecked(False)
            w.actions.truth.setEnabled(False)  # never in reading mode, whatever the AI policy
            self._set_ai_visible(False)
        else:
            w.actions.truth.setEnabled(True)
            w.actions.truth.setChecked(True)
            w.refresh_review_phase()
            self.dock.show_nothing()
        self._show_mode()
        self.modeChanged.emit(reading)

    def _show_mode(self) -> None:
        if self.reading:
            text = f"READING as {self._me()}"
            self.mode_label.setStyleSheet("QLabel#readingMode { background: #1f5f9f; color: white; padding: 0 6px; }")
        else:
            text = "AUDIT (ground truth shown)"
            self.mode_label.setStyleSheet("QLabel#readingMode { background: #6f5a1f; color: white; padding: 0 6px; }")
        self.mode_label.setText(text)
        self.mode_label.setToolTip("Reading mode: no ground truth, the AI as the site's policy says; Reading → Leave "
                                   "reading mode" if self.reading else "Audit mode: Reading → Start reading (Ctrl+Shift+R)")
        self.window.setWindowTitle(f"{self.base_title} — {text}")

    def _me(self) -> str:
        code = self.session.reader if self.session else ""
        return f"{self.names.get(code, code)} ({code})"

    def _set_ai_visible(self, visible: bool) -> None:
        w = self.window
        w.viewer.set_blinded(not visible)
        for action in (w.actions.prediction, w.actions.heatmap, w.actions.roi):
            action.setEnabled(visible)
        if not visible and w.actions.roi.isChecked():
            w.actions.roi.setChecked(False)

    # -- cases -----------------------------------------------------------------------------------------------------

    def refresh_worklists(self) -> dict | None:
        """The reader's worklists from the store, shown; None when the database did not answer (it says why)."""
        if not self.reading:
            return None
        try:
            lists = self.session.store.worklists(self.session.reader)
        except ReadStoreError as exc:
            self.dock.say(str(exc), error=True)
            return None
        self.dock.show_worklists(lists)
        self._lists = lists
        return lists

    def open_case(self, case_id: str) -> None:
        """The case on screen changed: park the read left behind, open this one for this reader."""
        if not self.reading:
            return
        session = self.session
        self.window.viewer.set_mark_mode(False)
        self.marking = None
        if session.draft is not None and session.opened is not None and session.opened.case_id != case_id \
                and self._draft_has_input():
            self._park_quietly()
        try:
            session.open(case_id)
        except ReadRefused as exc:
            self.dock.show_nothing(f"{case_id}: {exc}")
            self._set_ai_visible(False)
            return
        except ReadStoreError as exc:
            self.dock.say(str(exc), error=True)
            return
        self.dock.say("")
        self._show()

    def _draft_has_input(self) -> bool:
        draft = self.session.draft
        return bool(draft.findings) or any(b.score is not None or b.outcome != "routine" or b.density
                                           for b in draft.breasts.values())

    def _park_quietly(self) -> None:
        try:
            self.session.park()
        except OSError as exc:
            self.window.errors.show(f"the draft could not be saved ({exc})", context="Parking the read")

    def _show(self) -> None:
        session = self.session
        opened = session.opened
        if opened is None:
            return
        visible = self._ai_on_screen()
        self._set_ai_visible(visible)
        self.dock.show_ai.setVisible(self._ai_on_request() and not visible)
        if visible and session.draft is not None:
            self._record_ai_on_screen()
        self._show_marks()
        role = opened.role
        header = f"<b>{opened.case_id}</b>: {ROLE_HEADERS.get(role, role)}. Reading as {self._me()}."
        if session.draft is not None:
            self.dock.show_draft(header, {side: vars(b) for side, b in session.draft.breasts.items()},
                                 [self._finding_text(side, f) for side, f in session.draft.findings])
            return
        revealed = [read_text(r, self.names) for r in ([opened.own] if opened.own else []) + list(opened.others)]
        if opened.status.final:
            revealed.append("<b>Final</b>: " + ", ".join(f"{side} {OUTCOME_WORDS[o]}"
                                                           for side, o in opened.status.final.items()))
        if opened.ai_visible:
            revealed.append(self._ai_text())
        text = "<br><br>".join(t for t in revealed if t)
        if role in ("arbitration", "consensus") and opened.status.needs_third_reader():
            self.dock.show_arbitration(header + f" Discordant: {', '.join(opened.status.discordant)}.", text)
        else:
            self.dock.show_committed(header, text, can_change=opened.own is not None and role != "done")

    def _show_marks(self) -> None:
        """The marks on their images: of the read being written (numbered 1, 2, ...), else of the reader's own read,
        and of the other reads once they are shown (numbered with their reader's code: AA1, BB1, ...)."""
        w, session = self.window, self.session
        opened = session.opened if session is not None else None
        labelled: list[tuple[str, Finding]] = []
        if session is not None and session.draft is not None:
            labelled = [(str(n), f) for n, (_side, f) in enumerate(session.draft.findings, 1)]
        elif opened is not None and opened.own is not None:
            labelled = [(str(n), f) for n, f in enumerate((f for b in opened.own.breasts for f in b.findings), 1)]
        for other in opened.others if opened is not None and session.draft is None else ():
            labelled += [(f"{other.reader}{n}", f) for n, f in
                         enumerate((f for b in other.breasts for f in b.findings), 1)]
        root = w.index.root if w.index else ""
        case = opened.case_id if opened is not None else ""  # the viewer may still show the case before it
        paths = {image_key(i, root): i.path for i in w.worklist.patients.get(case, [])}
        marks: dict[str, list[tuple[float, float, str]]] = {}
        for label, finding in labelled:
            for mark in finding.marks:
                if mark.image in paths:
                    x = sum(p[0] for p in mark.points) / len(mark.points)
                    y = sum(p[1] for p in mark.points) / len(mark.points)
                    marks.setdefault(paths[mark.image], []).append((x, y, label))
        w.viewer.set_marks(marks)

    @staticmethod
    def _finding_text(side: str, finding: Finding) -> str:
        marks = len(finding.marks)
        return f"{side}: {finding.abnormality} ({', '.join(finding.views)}; {marks} mark{'s' if marks != 1 else ''})"

    def _ai_scores(self) -> dict[str, float]:
        """The AI's case score per breast on screen: the highest of that side's views."""
        w = self.window
        sides = {i.path: i.laterality for i in w.worklist.patients.get(w.viewer.patient_id or "", [])}
        scores: dict[str, float] = {}
        for path, score in w.findings.whole_scores.items():
            side = sides.get(path)
            if side in SIDES:
                scores[side] = max(score, scores.get(side, 0.0))
        return scores

    def _ai_text(self) -> str:
        scores = self._ai_scores()
        if not scores:
            return "AI: no result yet"
        return "AI p(malignant): " + ", ".join(f"{side} {100 * score:.0f}%" for side, score in sorted(scores.items()))

    def _ai_on_request(self) -> bool:
        """The site shows the AI before the reader's own read when the reader asks, and this read has not asked yet
        or has: the reader is writing a first or second read under the on_request policy."""
        opened = self.session.opened
        return opened.ai_policy == "on_request" and self.session.draft is not None and opened.own is None

    def _ai_on_screen(self) -> bool:
        opened = self.session.opened
        if self._ai_on_request():
            return self.session.draft.ai_shown  # asked for in this read (a parked draft remembers it)
        return opened.ai_visible and opened.ai_policy != "on_request" or opened.own is not None \
            or opened.status.state in ("arbitration", "done")

    def request_ai(self) -> bool:
        """Show the AI (Ctrl+Shift+I) where the site's policy shows it on request: the read records that it was seen."""
        if not self.reading or self.session.opened is None or not self._ai_on_request():
            return False
        self.session.show_ai(self.window.ai.model_version, self._ai_scores())
        self._save_draft()
        self._show()
        self.dock.say("The AI is shown: your read records that you saw it")
        return True

    def _record_ai_on_screen(self) -> None:
        scores = self._ai_scores()
        if scores:
            self.session.show_ai(self.window.ai.model_version, scores)

    def _record_ai_result(self, ai) -> None:
        """Every whole-view AI result of a case on the reading list goes into the store (per breast, whether or not a
        reader sees it): the statistics compare the readers with the AI."""
        if not self.reading or ai.is_roi or ai.indexed.laterality not in SIDES:
            return
        version = self.window.ai.model_version or "unknown"
        key = (ai.indexed.path, version, f"{ai.result.case_score:.6f}")
        if key in self._ai_recorded:
            return
        self._ai_recorded.add(key)
        try:
            self.session.store.record_ai(ai.indexed.patient_id, ai.indexed.laterality, version, ai.result.case_score)
        except ReadRefused:
            pass  # a case not on the reading list (a file opened on its own)
        except ReadStoreError as exc:
            self.dock.say(str(exc), error=True)

    def ai_result_arrived(self) -> None:
        """An AI result for the case on screen: shown (and recorded with the read) where the policy lets it."""
        if self.reading and self.session.opened is not None and self.session.opened.ai_visible:
            self._show()

    # -- the reader's input --------------------------------------------------------------------------------------

    def _on_breast_changed(self, side: str, values: dict) -> None:
        if not self.reading or self.session.draft is None:
            return
        self.session.set_breast(side, **values)
        self._save_draft()

    def _save_draft(self) -> None:
        try:
            self.session.drafts.save(self.session.draft)  # nothing the reader wrote is lost, even in a crash
        except OSError as exc:
            self.dock.say(f"the draft could not be saved on this workstation ({exc})", error=True)

    def add_finding(self, side: str, abnormality: str) -> None:
        if not self.reading or self.session.draft is None:
            return
        self.session.add_finding(side, Finding(abnormality, (f"{side}CC",), ()))
        self._save_draft()
        self._show()
        self.dock.findings.setCurrentRow(self.dock.findings.count() - 1)
        self.dock.say("Finding added: Mark on image, then click where it is on each view that shows it")

    def start_mark(self, row: int) -> None:
        if not self.reading or self.session.draft is None:
            return
        if not 0 <= row < len(self.session.draft.findings):
            self.dock.say("Add or select a finding first", error=True)
            return
        self.marking = row
        self.window.viewer.set_mark_mode(True)
        self.dock.say("Click the finding on the image (Esc cancels)")

    def cancel_mark(self) -> bool:
        if self.marking is None:
            return False
        self.marking = None
        self.window.viewer.set_mark_mode(False)
        self.dock.say("")
        return True

    def _on_mark(self, path: str, x: float, y: float) -> None:
        row, self.marking = self.marking, None
        self.window.viewer.set_mark_mode(False)
        if not self.reading or row is None or self.session.draft is None:
            return
        w = self.window
        image = next((i for i in w.worklist.patients.get(w.viewer.patient_id or "", []) if i.path == path), None)
        side, _finding = self.session.draft.findings[row]
        if image is None or image.laterality != side or (image.view or "") not in ("CC", "MLO"):
            self.dock.say(f"That image is not a CC or MLO view of the {'left' if side == 'L' else 'right'} breast",
                          error=True)
            return
        try:
            self.session.add_mark(row, Mark(image_key(image, w.index.root if w.index else ""),
                                            f"{side}{image.view}", ((x, y),)))
        except ReadRefused as exc:
            self.dock.say(str(exc), error=True)
            return
        self._save_draft()
        self._show()
        self.dock.say(f"Marked on {side}{image.view}")

    def commit(self) -> bool:
        if not self.reading or self.session.draft is None:
            return False
        self._locate()
        return self._after(self.session.commit())

    def _locate(self) -> None:
        """The findings' clock face, depth, nipple distance and size, from the breast's outline on each marked image
        (found as the preprocessing finds it; computed once per image)."""
        from model.data.preprocess import find_breast_region
        from model.reading.location import breast_landmarks

        w = self.window
        root = w.index.root if w.index else ""
        landmarks, spacing = {}, {}
        for _side, finding in self.session.draft.findings:
            for mark in finding.marks:
                if mark.image in landmarks:
                    continue
                image = next((i for i in w.worklist.patients.get(w.viewer.patient_id or "", [])
                              if image_key(i, root) == mark.image), None)
                pane = w.viewer.pane_of(image.path) if image is not None else None
                loaded = pane.loaded if pane is not None else None
                if loaded is None:
                    continue
                if image.path not in self._geometry:
                    region = find_breast_region(loaded.mammogram.monochrome2())
                    try:
                        self._geometry[image.path] = breast_landmarks(region.mask, region.chest_wall_side)
                    except DataError:
                        self._geometry[image.path] = None  # no breast found: the finding keeps no location
                if self._geometry[image.path] is not None:
                    landmarks[mark.image] = self._geometry[image.path]
                    spacing[mark.image] = loaded.spacing_mm[1] if loaded.spacing_mm else None
        if landmarks:
            self.session.locate_findings(landmarks, spacing)

    def _after(self, outcome) -> bool:
        if outcome.read is None:
            self.dock.say(outcome.problem, error=True)
            if outcome.kept_as_draft:
                self.window.errors.show(outcome.problem, context="Your read was not committed")
            return False
        self.dock.say(f"Read committed at {outcome.read.committed_at[11:19]} UTC")
        self._show()
        # the worklists are read again once the next case is on screen: with a site's years of reads the query
        # takes a fifth of a second (bcir reads bench), which F9 should not wait for
        QTimer.singleShot(0, self.refresh_worklists)
        return True

    def normal_next(self) -> bool:
        """"Normal both breasts, next case": one key (F9)."""
        if not self.reading or self.session.draft is None:
            return False
        case = self.session.draft.case_id
        if not self._after(self.session.normal_both()):
            return False
        self.next_case(after=case, known=True)
        return True

    def park_next(self) -> None:
        if not self.reading or self.session.draft is None:
            return
        case = self.session.draft.case_id
        self._park_quietly()
        self.dock.say(f"{case} parked on this workstation: it comes back as you left it")
        self.next_case(after=case, known=True)

    def next_case(self, after: str | None = None, *, known: bool = False) -> str | None:
        """The next case of the worklist the reader is working through (the tab shown), other than ``after``.
        ``known``: from the worklists as last read (refreshed after every commit) rather than a new query."""
        if not self.reading:
            return None
        role = ("first", "second", "arbitration", "done")[self.dock.tabs.currentIndex()]
        lists = self._lists if known and self._lists is not None else self.refresh_worklists()
        if lists is None:
            return None
        if after is not None:
            self._passed.add(after)
        current = self.window.viewer.patient_id
        ahead = [i.case_id for i in lists[role].items if i.case_id not in self._passed and i.case_id != current
                 and i.case_id in self.window.worklist.patients]
        if not ahead:
            self.dock.say(f"No more cases in {self.dock.tabs.tabText(self.dock.tabs.currentIndex())}")
            return None
        self.window.select_patient(ahead[0])
        return ahead[0]

    def change(self) -> None:
        if not self.reading:
            return
        try:
            self.session.change()
        except ReadRefused as exc:
            self.dock.say(str(exc), error=True)
            return
        self._show()
        self.dock.say("Changing your read: both reads are kept, the new one counts")

    def arbitrate(self, outcomes: dict, reason: str) -> bool:
        if not self.reading:
            return False
        try:
            self.session.arbitrate(outcomes, reason or "no reason given")
        except (ReadRefused, ReadStoreError) as exc:
            self.dock.say(str(exc), error=True)
            return False
        self.dock.say("Final outcome recorded")
        self.refresh_worklists()
        self._show()
        return True


__all__ = ["ReadingController"]
