"""The main window: worklist, skipped files, findings, the hanging, menus and status bar; ``run()`` starts the app."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QToolButton,
    QWidget,
)

from model.errors import JobError
from model.reviews.export import export_csv
from model.reviews.protocol import hides_ai_and_truth
from model.reviews.store import ReviewStore
from model.data.study_index import ScanProgress, StudyIndex, build_index

from app.ai_controller import AiController
from app.case_loader import CaseLoader
from app.errors import ErrorReporter
from app.panels.findings_panel import FindingsDock
from app.panels.reading_panel import ReadingDock
from app.pacs_controller import PacsController
from app.reading_controller import ReadingController
from app.viewer.hanging import cc_row
from app.viewer.hanging_view import HangingView
from app.errors import describe
from app.menus import build_menus
from app.dialogs.review_history import ReviewHistoryDialog
from app.panels.review_panel import ReviewDock
from app.settings import Settings
from app.dialogs.shortcuts_dialog import ShortcutsDialog
from app.panels.skipped_files import SkippedFilesDock
from app.typing_guard import TypingGuard
from app.background.workers import Worker, WorkerPool
from app.panels.worklist import WorklistDock

log = logging.getLogger("bcir.app")

APP_NAME = "B-Cir Review"
DEFAULT_DEMO = Path(".demo") / "CBIS-DDSM"  # what `make demo` writes, relative to the repository root
STAGE_WORDS = {"listing": "listing files", "headers": "reading headers", "masks": "checking masks", "done": "finishing"}


class MainWindow(QMainWindow):
    indexReady = Signal(object)  # StudyIndex, once the worklist shows it
    indexFailed = Signal(str)
    aiFinished = Signal(str)  # patient id: the AI has a result for each CC view, gave up, or cannot run

    def __init__(self, parent: QWidget | None = None, *, model_path: str | Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.errors = ErrorReporter(self)
        self.workers = WorkerPool(self)
        self.index: StudyIndex | None = None
        self.root: str | None = None
        self._index_worker: Worker | None = None
        self._case_started = 0.0
        self._opened_one_folder = False

        self.settings = Settings()
        self.reviews, review_problem = self._open_review_store()
        self.viewer = HangingView()
        self.loader = CaseLoader(self.workers, self.viewer, self.errors, self)
        self.setCentralWidget(self.viewer)
        self.worklist = WorklistDock(self)
        self.skipped = SkippedFilesDock(self)
        self.findings = FindingsDock(self)
        self.review = ReviewDock(self.settings, self.reviews, review_problem, self)
        self.reading = ReadingDock(self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.worklist)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.findings)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.review)
        self.splitDockWidget(self.findings, self.review, Qt.Orientation.Vertical)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.reading)
        self.reading.hide()  # reading mode shows it
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.skipped)
        self.resizeDocks([self.worklist, self.findings], [330, 440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.findings, self.review], [380, 330], Qt.Orientation.Vertical)
        self.resizeDocks([self.skipped], [110], Qt.Orientation.Vertical)

        self.ai_control = AiController(self, model_path=model_path)
        self.ai = self.ai_control.runner
        self._build_status_bar()
        self.reading_control = ReadingController(self)
        self.statusBar().insertPermanentWidget(0, self.reading_control.mode_label)
        self.pacs_control = PacsController(self)
        self.statusBar().insertPermanentWidget(1, self.pacs_control.label)
        self.actions = build_menus(self)
        self.ai_control.roi_action = self.actions.roi
        self.cancel_button.clicked.connect(self.cancel_background)
        self.worklist.patientSelected.connect(self.show_patient)
        self.worklist.imageSelected.connect(self._on_image_selected)
        self.viewer.cursorMoved.connect(self.cursor_label.setText)
        self.viewer.canvas.left.connect(self.cursor_label.clear)
        self.viewer.windowChanged.connect(self.window_label.setText)
        self.viewer.caseShown.connect(self._on_case_shown)
        self.ai_control.finished.connect(self.aiFinished)
        self.ai.resultReady.connect(self._on_ai_result)
        self.review.phaseChanged.connect(self._apply_review_phase)
        self.review.recorded.connect(self.worklist.set_review_status)
        self.review.readerChanged.connect(lambda _name: self.worklist.set_review_statuses(self.review.statuses()))
        self.ai_control.modelChanged.connect(lambda: self.review.set_ai(None, None, complete=False))
        self.aiFinished.connect(self._on_ai_finished)
        self.actions.blinded.setChecked(self.review.blinded_mode)
        self.worklist.set_blinded(self.review.blinded_mode)
        if review_problem:
            self.errors.show(review_problem, context="Reviews cannot be stored")
        self.typing_guard = TypingGuard(self)
        QApplication.instance().installEventFilter(self.typing_guard)
        self.retrain_dialog = None
        self.models_dialog = None
        self.resume_prompt: QMessageBox | None = None
        self.quit_prompt: QMessageBox | None = None  # asked when the window closes while a retrain runs
        self.retrain_status: QToolButton | None = None  # made when a retrain first reports
        self._quit_after_retrain = False  # the reader answered the quit question: close for real
        self.ai_control.start()
        QTimer.singleShot(0, self.offer_resume)
        QTimer.singleShot(0, self._follow_background_retrain)

    def _open_review_store(self) -> tuple[ReviewStore | None, str]:
        try:
            return ReviewStore(), ""
        except Exception as exc:  # noqa: BLE001 - the viewer works without it; the reason is shown once
            return None, describe(exc)

    # ------------------------------------------------------------------ building

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursor_label = QLabel()
        self.cursor_label.setMinimumWidth(360)
        self.window_label = QLabel()
        self.window_label.setMinimumWidth(170)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.hide()
        self.ai_state_label = self.ai_control.state_label
        self.ai_progress = self.ai_control.progress
        self.ai_label = self.ai_control.model_label
        widgets = (self.cursor_label, self.window_label, self.progress, self.cancel_button,
                   self.ai_state_label, self.ai_progress, self.ai_label)
        for widget in widgets:
            bar.addPermanentWidget(widget)

    # ------------------------------------------------------------------ opening and indexing

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a CBIS-DDSM download or a DICOM folder", self.root or "")
        if folder:
            self.open_path(folder)

    def ask_open_file(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open mammograms", self.root or "",
                                                "Images (*.dcm *.dicom *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if paths:
            self.open_path(paths if len(paths) > 1 else paths[0])

    def open_path(self, path: str | Path | list[str | Path]) -> None:
        """Index ``path`` (a folder, a file, or several files and folders) in the background; the worklist
        fills patient by patient as the indexing goes."""
        several = isinstance(path, (list, tuple)) and len(path) > 1
        if isinstance(path, (list, tuple)) and not several:
            path = path[0]
        # absolute from here on: the title, the recent list and the skipped files never depend on the working folder
        target = [str(Path(p).expanduser().resolve()) for p in path] if several else str(Path(path).expanduser().resolve())
        root = os.path.commonpath(target) if several else target
        shown = f"{len(target)} files in {root}" if several else root
        if self._index_worker is not None:
            self._index_worker.cancel()
        self.loader.reset()
        self.root = root
        self._opened_one_folder = not several and Path(root).is_dir()
        self.index = None
        self.findings.set_case(None, [])
        self.review.set_case(None)
        self.worklist.set_index(None)
        self.skipped.set_skipped([])
        self.viewer.show_message(f"Indexing {shown}…")
        self.setWindowTitle(f"{APP_NAME} — {shown}")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.statusBar().showMessage(f"Indexing {shown}…")
        started = time.perf_counter()
        worker = self.workers.start(
            lambda report, should_stop: build_index(target, progress=report, should_stop=should_stop),
            name=f"index {shown}",
            on_progress=lambda event: self._on_index_progress(worker, event),
            on_result=lambda index: self._on_index_done(worker, index, time.perf_counter() - started),
            on_error=lambda message: self._on_index_error(worker, shown, message),
        )
        self._index_worker = worker

    def _on_index_progress(self, worker: Worker, event: ScanProgress) -> None:
        if worker is not self._index_worker:
            return
        if event.ready:
            first = not self.worklist.patients
            self.worklist.add_images(event.ready)
            if first:
                self.viewer.show_message("Select a patient in the worklist (N: next); indexing goes on")
        if event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        self.statusBar().showMessage(f"Indexing: {STAGE_WORDS.get(event.stage, event.stage)} {event.done}/{event.total}")

    def _index_finished(self) -> None:
        self._index_worker = None
        self.progress.hide()
        self.cancel_button.hide()

    def _on_index_done(self, worker: Worker, index: StudyIndex, seconds: float) -> None:
        if worker is not self._index_worker:
            return
        stopped = worker.is_cancelled()
        self._index_finished()
        self.index = index
        self.worklist.set_index(index)
        self.worklist.set_review_statuses(self.review.statuses())
        self.skipped.set_skipped(index.skipped, index.root)
        self.skipped.setVisible(bool(index.skipped))  # the reading area gets the room when nothing was skipped (Ctrl+2)
        if not stopped and index.images and self._opened_one_folder:
            self.settings.add_recent(self.root)
            self.actions.refresh_recent()
        patients = index.patients()
        summary = (
            f"{'Indexing stopped: ' if stopped else ''}{len(patients)} patients, {len(index.images)} images, "
            f"{len(index.skipped)} files skipped ({seconds:.1f} s)"
        )
        self.statusBar().showMessage(summary, 15_000)
        if self.viewer.patient_id is None:
            self.viewer.show_message("Select a patient in the worklist (N: next)" if patients else "No mammograms found here")
        self.indexReady.emit(index)

    def _on_index_error(self, worker: Worker, root: str, message: str) -> None:
        if worker is not self._index_worker:
            return
        self._index_finished()
        self.viewer.show_message("Could not open this folder")
        self.errors.show(message, context=f"Opening {root}")
        self.indexFailed.emit(message)

    def cancel_background(self) -> None:
        if self._index_worker is not None:
            self._index_worker.cancel()
            self.statusBar().showMessage("Stopping the indexing…")
        self.loader.cancel()
        self.ai_control.cancel()

    def escape(self) -> None:
        """Esc: stop marking a finding, or leave ROI mode when it is on, else cancel what runs in the background."""
        if self.reading_control.cancel_mark():
            return
        if self.actions.roi.isChecked():
            self.actions.roi.setChecked(False)
        else:
            self.cancel_background()

    # ------------------------------------------------------------------ showing a patient

    def select_patient(self, patient_id: str) -> bool:
        """Select ``patient_id`` in the worklist (which then shows it)."""
        return self.worklist.select_patient(patient_id)

    def step_patient(self, delta: int) -> None:
        if not self.worklist.step(delta):
            self.statusBar().showMessage("Last patient in the list" if delta > 0 else "First patient in the list", 3000)

    def show_worklist_filter(self, name: str) -> None:
        if not self.worklist.set_filter(name):
            self.statusBar().showMessage("Blinded reading: the AI-flagged filter would show the AI's verdict", 5000)

    def focus_search(self) -> None:
        self.worklist.show()
        self.worklist.search.setFocus()
        self.worklist.search.selectAll()

    def _on_image_selected(self, patient_id: str, path: str) -> None:
        if self.viewer.patient_id != patient_id:
            self.show_patient(patient_id)
        slot = next((s for s, image in self.viewer.assignment.items() if image.path == path), None)
        if slot is not None and slot.row == 1 and not self.viewer.four_up:
            self.actions.four_up.setChecked(True)

    def show_patient(self, patient_id: str) -> None:
        images = self.worklist.patients.get(patient_id)
        if images is None or self.viewer.patient_id == patient_id:
            return
        self._case_started = time.perf_counter()
        self.statusBar().showMessage(f"{patient_id}: loading…")
        # Every panel is reset for the new case before the loader runs: a case already in memory is shown at
        # once, inside loader.show, and its AI results and caseDone arrive before it returns.
        self.review.set_case(patient_id)  # first: in blinded reading the AI is hidden before anything is drawn
        self.reading_control.open_case(patient_id)  # in reading mode: the AI as the site's policy says, no truth
        self.ai_control.patient_shown(patient_id, cc_row(images))
        self.loader.show(patient_id, images)

    def _on_case_shown(self, patient_id: str) -> None:
        seconds = time.perf_counter() - self._case_started
        problems = self.viewer.problems()
        message = f"{patient_id} shown in {seconds:.2f} s"
        if problems and (self.viewer.blinded or self.reading_control.reading):
            problems = []  # they name the pathology: not before the reader's own read
        if problems:
            message += f"; {len(problems)} truth mask{'s' if len(problems) > 1 else ''} not drawn: " + "; ".join(problems)
        self.statusBar().showMessage(message, 20_000)
        self.ai_control.request_case()
        self._prefetch_next()

    def _prefetch_next(self) -> None:
        """Load the next listed patient at low priority, so N shows it at once."""
        visible = self.worklist.visible_patients()
        current = self.viewer.patient_id
        if current in visible and visible.index(current) + 1 < len(visible):
            next_id = visible[visible.index(current) + 1]
            self.loader.prefetch(next_id, self.worklist.patients[next_id])

    # ------------------------------------------------------------------ reviews

    def _on_ai_result(self, ai) -> None:
        if ai.indexed.patient_id == self.viewer.patient_id and not ai.is_roi:
            complete = all(i.path in self.findings.whole_scores for i in self.findings.images)
            self.review.set_ai(self.findings.score(), self.ai.model_version, complete=complete, trust=self.ai.trust)
            self.reading_control.ai_result_arrived()

    def _on_ai_finished(self, patient_id: str) -> None:
        """The AI is done with the case on screen (results, or failures on some views): the score is final."""
        if patient_id == self.viewer.patient_id:
            self.review.set_ai(self.findings.score(), self.ai.model_version, complete=True, trust=self.ai.trust)

    def refresh_review_phase(self) -> None:
        self._apply_review_phase(self.review.phase)

    def _apply_review_phase(self, phase: str) -> None:
        """Blinded reading hides the AI and the truth until the reader's own read is recorded (in audit mode; in
        reading mode the reading controller decides what is shown)."""
        if self.reading_control.reading:
            return
        blind = hides_ai_and_truth(phase, self.review.blinded_mode)
        self.viewer.set_blinded(blind)
        self.findings.set_blinded(blind)
        if blind and self.actions.roi.isChecked():
            self.actions.roi.setChecked(False)
        for action in (self.actions.truth, self.actions.prediction, self.actions.heatmap, self.actions.roi):
            action.setEnabled(not blind)

    def set_blinded_mode(self, on: bool) -> None:
        self.review.set_blinded_mode(on)
        self.worklist.set_blinded(on)
        self.worklist.set_review_statuses(self.review.statuses())
        self.statusBar().showMessage("Blinded reading: AI and ground truth hidden until you record your own read"
                                     if on else "Open reading: the AI is shown", 5000)

    def record_own_read(self) -> None:
        self.review.show()
        self.review.record_own()

    def record_verdict(self, verdict: str) -> None:
        self.review.show()
        self.review.record_verdict(verdict)

    def show_review_history(self) -> ReviewHistoryDialog | None:
        if self.reviews is None:
            self.errors.show(self.review.store_problem, context="Reviews cannot be stored")
            return None
        only = self.review.only_reader
        dialog = ReviewHistoryDialog(self.reviews, self.ask_export_reviews, self, reader=only)
        dialog.setModal(False)
        dialog.show()
        self._history_dialog = dialog
        return dialog

    def ask_export_reviews(self) -> None:
        if self.reviews is None:
            self.errors.show(self.review.store_problem, context="Reviews cannot be stored")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export reviews to CSV", str(export_folder() / default_export_name()),
                                              "CSV (*.csv)")
        if path:
            self.export_reviews(path)

    def export_reviews(self, path: str | Path) -> int | None:
        try:
            count = export_csv(self.reviews, path, reader=self.review.only_reader)  # in blinded reading: own reviews
        except Exception as exc:  # noqa: BLE001 - one line, the viewer stays up
            self.errors.show(describe(exc), context=f"Exporting reviews to {path}")
            return None
        self.statusBar().showMessage(f"{count} reviews exported to {path}", 10_000)
        return count

    def open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.errors.show(f"{path} does not exist any more", context="Opening a recent folder")
            return
        self.open_path(path)

    # ------------------------------------------------------------------ retraining and models

    def show_retrain(self):
        """Tools → Retrain on folder (one dialog per session: it keeps following its run when closed)."""
        dialog = self._retrain()
        dialog.show()
        dialog.raise_()
        return dialog

    def _retrain(self):
        """The session's retrain dialog, made on first use and not shown; its run status goes to the status bar."""
        from app.dialogs.retrain_dialog import RetrainDialog

        if self.retrain_dialog is None:
            self.retrain_dialog = RetrainDialog(self.workers, lambda: self.ai.model_path, settings=self.settings,
                                                demo_root=default_path(), parent=self)
            self.retrain_dialog.modelAccepted.connect(self._use_model_entry)
            self.retrain_dialog.runStatus.connect(self._show_retrain_status)
        return self.retrain_dialog

    def _show_retrain_status(self, text: str) -> None:
        """A status-bar button says that a retrain runs, or waits for the reader's choice, also while its window is
        closed; a click opens the window. Hidden when there is nothing to say."""
        button = self.retrain_status
        if button is None:
            button = self.retrain_status = QToolButton()
            button.setAutoRaise(True)
            button.setToolTip("Open the Retrain window (Tools → Retrain on folder)")
            button.clicked.connect(self.show_retrain)
            self.statusBar().addPermanentWidget(button)
        button.setText(text)
        button.setVisible(bool(text))

    def _follow_background_retrain(self) -> None:
        """At start: a retrain left training in the background when the app was quit, and finished since, has a
        safety gate waiting for the reader: the status bar says so (a run still going is followed by offer_resume)."""
        from model.jobs.job import find_undecided_background

        if self.retrain_dialog is not None and self.retrain_dialog.job is not None:
            return
        try:
            jobs = find_undecided_background()
        except OSError as exc:
            log.warning("retrain jobs not readable: %s", describe(exc))
            return
        if jobs:
            self._retrain().attach(jobs[-1])

    def _ask_quit_during_retrain(self, job) -> None:
        """Quit while a retrain runs: pause it (resumable at the next start), leave it training in the background,
        or stay. Asked in a window-modal box that does not block (``quit_prompt``)."""
        status = self.retrain_dialog.status_text if self.retrain_dialog is not None else ""
        box = QMessageBox(
            QMessageBox.Icon.Question, "Training is running",
            f"A retrain is running{f' ({status})' if status else ''}.\n\n"
            "Pause and quit: the training stops after its current batch; every complete epoch is kept, and the next "
            "start offers to resume it.\n"
            "Keep training and quit: the training goes on in the background at low priority; the next start follows "
            "it again, or shows its safety gate when it has finished.\n"
            "Cancel: do not quit.", QMessageBox.StandardButton.NoButton, self)
        pause = box.addButton("Pause and quit", QMessageBox.ButtonRole.AcceptRole)
        background = box.addButton("Keep training and quit", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(pause)
        box.setEscapeButton(cancel)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def chosen(button) -> None:
            self.quit_prompt = None
            try:
                if button is pause:
                    job.pause("the app was quit")
                elif button is background:
                    job.keep_in_background("the app was quit")
                else:
                    return
            except JobError as exc:  # it ended meanwhile: nothing to pause, quit all the same
                log.info("retrain at quit: %s", describe(exc))
            self._quit_after_retrain = True
            self.close()

        box.buttonClicked.connect(chosen)
        box.show()
        self.quit_prompt = box

    def show_models(self):
        from app.dialogs.models_dialog import ModelsDialog

        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(parent=self)
            self.models_dialog.modelChosen.connect(self._use_model_entry)
        self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def _use_model_entry(self, entry) -> None:
        """The reader chose another model: the AI runs again with it (results are cached per model version)."""
        self.ai_control.set_model_path(entry.weights)
        self.statusBar().showMessage(f"Model {entry.version} in use", 10_000)
        if self.models_dialog is not None:
            self.models_dialog.refresh()

    def offer_resume(self) -> None:
        """At start: follow a retrain still running, offer to resume an interrupted one, close one that cannot be.

        A job folder that cannot be read (a damaged spec or state file) is left alone with one line in the log:
        it must never stop the viewer from starting.
        """
        from model.jobs.job import list_jobs

        running, resumable = [], []
        try:
            jobs = list_jobs()
        except OSError as exc:
            log.warning("retrain jobs not readable: %s", describe(exc))
            return
        for job in jobs:
            try:
                job.spec()
                if job.state().get("state") in ("running", "gating") and job.is_alive():
                    running.append(job)
                elif job.resumable():
                    resumable.append(job)
                elif job.interrupted():  # died before its first epoch ended: nothing to continue from
                    job.abandon()
            except Exception as exc:  # noqa: BLE001 - one damaged job folder must not stop the app
                log.warning("retrain job %s skipped: %s", job.id, describe(exc))
        if running:  # the viewer went down but the training did not: follow it again
            self.show_retrain().attach(running[-1])
            return
        if not resumable:
            return
        job = resumable[-1]
        spec = job.spec()
        box = QMessageBox(QMessageBox.Icon.Question, "Resume training?",
                          f"The retrain on {spec.root} (job {job.id}): {job.resume_question()}",
                          QMessageBox.StandardButton.NoButton, self)
        resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        discard = box.addButton("Discard it", QMessageBox.ButtonRole.DestructiveRole)
        box.setModal(False)

        def chosen(button) -> None:
            self.resume_prompt = None
            try:
                if button is resume:
                    self.resume_job(job)
                elif button is discard:
                    job.abandon()
            except Exception as exc:  # noqa: BLE001
                self.errors.show(describe(exc), context="Retrain job")

        box.buttonClicked.connect(chosen)
        box.show()
        self.resume_prompt = box

    def resume_job(self, job) -> None:
        try:
            job.resume()
        except Exception as exc:  # noqa: BLE001 - one line, the viewer stays up
            self.errors.show(describe(exc), context="Resuming the retrain")
            return
        self.show_retrain().attach(job)

    # ------------------------------------------------------------------ view actions

    def next_preset(self) -> None:
        name = self.viewer.next_preset()
        if name:
            self.statusBar().showMessage(f"Window: {name}", 3000)

    def set_preset(self, index: int) -> None:
        if index >= self.viewer.preset_count():
            self.statusBar().showMessage(f"No preset {index + 1} for this case ({self.viewer.preset_count()} presets)", 3000)
            return
        name = self.viewer.set_preset(index)
        self.statusBar().showMessage(f"Window: {name}", 3000)

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.menuBar(), self)
        dialog.setModal(False)
        dialog.show()
        self._shortcuts_dialog = dialog
        return dialog

    def show_about(self) -> None:
        QMessageBox.about(
            self, f"About {APP_NAME}",
            f"<b>{APP_NAME}</b><br>Double-reading desktop for screening mammograms.<br>"
            "Ground truth from CBIS-DDSM is drawn in red.",
        )

    # ------------------------------------------------------------------ window events

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.open_path(paths)
            event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        live = self.retrain_dialog.live_job() if self.retrain_dialog is not None else None
        if live is not None and not self._quit_after_retrain:
            event.ignore()  # asked first: pause, keep training in the background, or stay
            if self.quit_prompt is None:
                self._ask_quit_during_retrain(live)
            return
        if self._index_worker is not None:
            self._index_worker.cancel()
        self.review.save_drafts()
        self.reading_control.close()  # a read in progress stays on this workstation as a draft
        self.pacs_control.close()
        QApplication.instance().removeEventFilter(self.typing_guard)
        if self.retrain_dialog is not None:  # a live run was paused or left running, as the reader chose
            self.retrain_dialog.stop_following()
        for dialog in (self.retrain_dialog, self.models_dialog):
            if dialog is not None:
                dialog.close()
        self.workers.stop_all()
        if self.reviews is not None:
            self.reviews.close()
            self.reviews = None
            self.review.store = None
        super().closeEvent(event)


def export_folder() -> Path:
    """Where exports are offered: the reader's documents folder (never the folder the app was started from)."""
    from PySide6.QtCore import QStandardPaths

    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(documents) if documents and Path(documents).is_dir() else Path.home()


def default_export_name() -> str:
    return f"bcir-reviews-{time.strftime('%Y-%m-%d')}.csv"


def default_path() -> str | None:
    """The demo studies, looked for in the working folder and then next to the app's package."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / DEFAULT_DEMO).is_dir():
            return str(base / DEFAULT_DEMO)
    return None


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``python main.py`` and the ``bcir-review`` script."""
    from app.cli import parse_args
    from app.screenshot import ScreenshotRun

    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    path = args.path or default_path()
    if args.path and not Path(args.path).expanduser().exists():
        print(f"bcir-review: {args.path} does not exist", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    window = MainWindow(model_path=args.weights)
    previous_hook = sys.excepthook
    sys.excepthook = window.errors.excepthook
    window.resize(*args.size)
    window.show()
    shot = ScreenshotRun(window, args.screenshot, timeout_s=args.timeout) if args.screenshot else None
    if path:
        window.open_path(path)
    elif shot is not None:
        shot.save_now()
    try:
        return app.exec()
    finally:
        window.workers.stop_all()
        sys.excepthook = previous_hook
