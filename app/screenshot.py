"""``--screenshot FILE``: open, show the first case with ground truth, wait for its AI results, save the window, exit."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from model.data.study_index import StudyIndex
from app.case_text import first_case_with_truth

# After the last image is placed: let the panes paint once more before the grab.
SETTLE_MS = 150


class ScreenshotRun(QObject):
    """Drives a MainWindow through open → select → shown and AI done → grab, then quits the app with 0 (saved) or 1.

    "AI done" also covers an AI that cannot run (no model): the picture then shows why in the status bar.
    """

    def __init__(self, window, out: str | Path, *, timeout_s: float = 300.0) -> None:
        super().__init__(window)
        self.window = window
        self.out = Path(out)
        self.patient_id: str | None = None
        self._done = False
        self._shown = False
        self._ai_done = False
        window.indexReady.connect(self._on_index)
        window.indexFailed.connect(self._on_failed)
        window.viewer.caseShown.connect(self._on_case_shown)
        window.aiFinished.connect(self._on_ai_finished)
        QTimer.singleShot(int(timeout_s * 1000), self._on_timeout)

    def _on_index(self, index: StudyIndex) -> None:
        self.patient_id = first_case_with_truth(index)
        if self.patient_id is None or not self.window.select_patient(self.patient_id):
            self.save_now()

    def _on_case_shown(self, patient_id: str) -> None:
        if patient_id == self.patient_id:
            self._shown = True
            self._save_when_ready()

    def _on_ai_finished(self, patient_id: str) -> None:
        if patient_id == self.patient_id:
            self._ai_done = True
            self._save_when_ready()

    def _save_when_ready(self) -> None:
        if self._shown and self._ai_done:
            QTimer.singleShot(SETTLE_MS, self.save_now)

    def _on_failed(self, message: str) -> None:
        print(f"bcir-review: {message}", file=sys.stderr)
        self.save_now(code=1)

    def _on_timeout(self) -> None:
        if not self._done:
            what = "the AI finished" if self._shown else "the case was shown"
            print(f"bcir-review: --screenshot timed out before {what}", file=sys.stderr)
            self.save_now(code=1)

    def save_now(self, code: int = 0) -> None:
        if self._done:
            return
        self._done = True
        QApplication.processEvents()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.out)):
            print(f"bcir-review: could not write {self.out}", file=sys.stderr)
            code = 1
        QTimer.singleShot(0, lambda: QApplication.exit(code))
