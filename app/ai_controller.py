"""Connects the AI runner to what the reader sees: the panes' marks, the findings, the worklist, the status bar.

The main window owns one :class:`AiController`. It asks for the case on
screen once its images are shown, draws each result as it arrives (and a
prefetched case's score in the worklist), handles ROI mode and the overlay
actions, and gives the status bar its three AI widgets: what runs now, a
progress bar, and the device and model version (always there).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QLabel, QProgressBar

from app.background.ai_results import AiFailure, AiImage
from app.background.ai_worker import AiRunner
from app.viewer.hanging import cc_row

if TYPE_CHECKING:
    from app.main_window import MainWindow


class AiController(QObject):
    finished = Signal(str)  # patient id: the AI has answered for the case on screen (results, errors or no model)
    modelChanged = Signal()  # another model file: what was shown was the previous model's

    def __init__(self, window: MainWindow, *, model_path: str | Path | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.viewer = window.viewer
        self.findings = window.findings
        self.worklist = window.worklist
        self.runner = AiRunner(window.workers, self, model_path=model_path)
        self.roi_action: QAction | None = None  # set once the menus exist
        self.job_text = ""  # what the AI does or did last, for the status bar
        self.last_case_seconds: float | None = None  # case selected to its last AI result
        self._case_started = 0.0

        self.state_label = QLabel()
        self.state_label.setObjectName("aiState")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(120)
        self.progress.setFormat("AI %p%")
        self.progress.hide()
        self.model_label = QLabel()
        self.model_label.setObjectName("aiModel")
        self.model_label.setStyleSheet("QLabel#aiModel { border-left: 1px solid #888888; padding-left: 6px; }")

        self.runner.modelStatus.connect(self._on_model_status)
        self.runner.progressed.connect(self._on_progress)
        self.runner.resultReady.connect(self._on_result)
        self.runner.failed.connect(lambda message, context: window.errors.show(message, context=context))
        self.runner.imageFailed.connect(self._on_image_failed)
        self.runner.caseDone.connect(self._on_case_done)
        self.runner.idle.connect(self.progress.hide)
        self.viewer.roiClicked.connect(self._on_roi_clicked)
        self.findings.lesionActivated.connect(self._on_lesion_activated)

    def start(self) -> None:
        self.runner.start()

    @property
    def roi_mode(self) -> bool:
        return self.roi_action is not None and self.roi_action.isChecked()

    # -- the case on screen

    def patient_shown(self, patient_id: str, cc_images: list) -> None:
        """A new case is on its way to the panes (``cc_images``: its CC row): its findings start empty.

        Called before the panes are filled: a case already in memory is shown, and its results arrive, at once.
        """
        self._case_started = time.perf_counter()
        self.last_case_seconds = None
        waiting = self.runner.status if self.runner.unavailable is not None else "AI waiting…"
        self.findings.set_case(patient_id, cc_images, waiting)

    def request_case(self) -> None:
        """Run the network on the case on screen (its images are shown: they came first)."""
        if self.viewer.patient_id is not None:
            self.runner.request_case(self.viewer.patient_id, self.viewer.cc_images())

    def run_again(self) -> None:
        """After a cancel or an error: run the case on screen again (images that failed are tried again)."""
        self.runner.forget_failures([i.path for i in self.viewer.cc_images()])
        self.request_case()

    def cancel(self) -> None:
        if self.runner.cancel():
            self._set_job("AI cancelled (Ctrl+R runs it again)")

    def set_model_path(self, path: str | Path | None) -> None:
        """Use another model file; the case on screen runs again with it."""
        for shown in list(self.viewer.ai):
            self.viewer.remove_ai_result(shown)
        self.worklist.clear_ai_scores()  # they were the previous model's
        self.modelChanged.emit()
        self.findings.set_case(self.viewer.patient_id, self.viewer.cc_images() if self.viewer.patient_id else [])
        self.runner.set_model_path(path)
        if self.viewer.patient_id is not None and self.viewer.is_complete():
            self.request_case()

    def ask_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Choose a model file", "", "Model (*.safetensors);;All files (*)")
        if path:
            self.set_model_path(path)

    # -- what the runner reports

    def _set_job(self, text: str) -> None:
        self.job_text = text
        self.findings.set_status(text)
        self._refresh_state()

    def _refresh_state(self) -> None:
        parts = ["ROI mode: click a point (Esc leaves)"] if self.roi_mode else []
        if self.job_text:
            parts.append(self.job_text)
        self.state_label.setText("  ·  ".join(parts))

    def _on_model_status(self, text: str) -> None:
        self.model_label.setText(text)
        self.model_label.setToolTip(text)
        self.findings.set_trust(self.runner.trust)
        if self.runner.unavailable is not None:
            self.findings.set_status(text)
            self.progress.hide()

    def _on_progress(self, what: str, done: int, total: int) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self._set_job(f"AI: {what} {done}/{total} tiles")
        else:
            self.progress.setRange(0, 0)
            self._set_job(f"AI: {what}…")
        self.progress.show()

    def _on_result(self, ai: AiImage) -> None:
        if not ai.is_roi:  # the worklist also takes the scores of a prefetched case
            self.worklist.set_ai_score(ai.indexed.patient_id, ai.path, ai.result.case_score)
        if ai.indexed.patient_id != self.viewer.patient_id:
            return
        if ai.is_roi and not self.roi_mode:
            return  # ROI mode was left while the tile ran
        shown = self.viewer.ai.get(ai.path)
        if not ai.is_roi and shown is not None and shown.is_roi:
            return  # the reader's ROI stays on screen; leaving ROI mode brings the whole view back
        self.viewer.set_ai_result(ai)
        self.findings.set_result(ai)
        if ai.is_roi:
            x, y = ai.roi_point
            count = len(ai.result.lesions)
            self._set_job(f"ROI at ({x:.0f}, {y:.0f}) on {ai.label}: {count} lesion{'s' if count != 1 else ''}, "
                          f"{ai.result.seconds:.1f} s")

    def _on_image_failed(self, failure: AiFailure) -> None:
        """One line on the case it belongs to, when that case is on screen; a prefetched case's failure waits
        (the runner tells it again when the case is opened) and never interrupts the case being read."""
        if failure.indexed.patient_id != self.viewer.patient_id:
            return
        if failure.roi_point is not None:
            if self.roi_mode:
                self._set_job(failure.text)
            return
        if self.findings.set_failure(failure):
            self.window.errors.note(failure.text, context=failure.indexed.patient_id)

    def _on_case_done(self, patient_id: str) -> None:
        if patient_id == self.viewer.patient_id and self.runner.unavailable is None:
            self.last_case_seconds = time.perf_counter() - self._case_started
            views = [r for r in self.findings.results.values() if not r.is_roi]
            cached = sum(1 for r in views if r.result.from_cache)
            failed = len(self.findings.failures)
            self._set_job(f"AI: {len(views)} view{'s' if len(views) != 1 else ''} in {self.last_case_seconds:.1f} s"
                          + (f" ({cached} from the cache)" if cached else "")
                          + (f"; {failed} could not run (Ctrl+R tries again)" if failed else ""))
            self.progress.hide()
            self._prefetch_next()
        self.finished.emit(patient_id)

    def _prefetch_next(self) -> None:
        """Run the next listed patient's CC views while the reader reads this one, so N opens with the marks."""
        visible = self.worklist.visible_patients()
        current = self.viewer.patient_id
        if current in visible and visible.index(current) + 1 < len(visible):
            next_id = visible[visible.index(current) + 1]
            self.runner.prefetch(next_id, cc_row(self.worklist.patients[next_id]))

    # -- overlay actions

    def set_prediction_visible(self, visible: bool) -> None:
        self.viewer.set_prediction_visible(visible)

    def set_heatmap_visible(self, visible: bool) -> None:
        self.viewer.set_heatmap_visible(visible)

    def change_fill_opacity(self, steps: int) -> None:
        opacity = self.viewer.change_fill_opacity(steps)
        self.window.statusBar().showMessage(f"Prediction fill opacity {opacity:.0%}", 3000)

    # -- ROI mode and going to a finding

    def set_roi_mode(self, on: bool) -> None:
        self.viewer.set_roi_mode(on)
        if not on:  # back to the whole-view results
            for path in list(self.viewer.ai):
                cached = self.runner.cached(path)
                if cached is not None:
                    self.viewer.set_ai_result(cached)
                else:
                    self.viewer.remove_ai_result(path)
            whole = {i.path: self.runner.cached(i.path) for i in self.viewer.cc_images()}
            self.findings.drop_roi_results({path: ai for path, ai in whole.items() if ai is not None})
            self.job_text = ""
        elif self.runner.unavailable is not None:
            self.job_text = self.runner.status
        self._refresh_state()

    def _on_roi_clicked(self, path: str, x: float, y: float) -> None:
        image = next((i for i in self.viewer.assignment.values() if i.path == path), None)
        if image is None:
            return
        if self.runner.request_roi(image, x, y):
            self._set_job(f"ROI at ({x:.0f}, {y:.0f}) on {image.name}…")
        else:
            self._set_job(self.runner.status)

    def _on_lesion_activated(self, path: str, box: tuple) -> None:
        pane = self.viewer.pane_of(path)
        if pane is not None and pane not in self.viewer.visible_panes():
            self.window.actions.four_up.setChecked(True)
        self.viewer.center_on(path, box)
