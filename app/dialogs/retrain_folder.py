"""The Retrain window's folder box: the folder to train on, read in the background, and what it holds."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.data.study_index import build_index
from model.errors import Cancelled
from model.train.dataset_summary import FolderSummary, summarize_index

from app.background.workers import WorkerPool

LAYOUT_WORDS = {
    "cbis-ddsm": "CBIS-DDSM (TCIA tree with description CSVs)",
    "labelled-folder": "labelled folder (labels.csv)",
    "kaggle-jpeg": "Kaggle JPEG copy of CBIS-DDSM (dicom_info.csv)",
    "dicom-only": "DICOM files without labels",
    "empty": "no mammograms",
}


def summarize(folder: str, views, report, should_stop):
    """The folder's index and its summary (the dialog keeps the index: the plan and the estimate count from it)."""
    start = time.perf_counter()
    index = build_index(folder, progress=report, should_stop=should_stop, workers=4)
    if should_stop():
        raise Cancelled("folder summary cancelled")
    summary = summarize_index(index, views=views)
    summary.seconds = time.perf_counter() - start
    return index, summary


def resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())


class FolderBox(QGroupBox):
    """"1. Folder": a path field, Browse and Demo studies; the summary and the problems once the folder is read."""

    folderChosen = Signal(str)  # browsed, typed (Return or Tab) or the demo: the window reads it
    summarized = Signal(object, object)  # (StudyIndex, FolderSummary) of the folder last asked for

    def __init__(self, workers: WorkerPool, demo_root: str | None, parent: QWidget | None = None) -> None:
        super().__init__("1. Folder", parent)
        self.workers = workers
        self.asked: str | None = None  # the folder last read, resolved
        self._worker = None
        self.path = QLineEdit()
        self.path.setPlaceholderText("a CBIS-DDSM download, a labelled folder (labels.csv) or the Kaggle JPEG copy")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._ask_folder)
        self.demo_button = QPushButton("Demo studies")
        self.demo_button.setToolTip(f"the built-in synthetic studies ({demo_root})" if demo_root else "")
        self.demo_button.clicked.connect(lambda: self.folderChosen.emit(demo_root))
        self.demo_button.setVisible(demo_root is not None)
        self.path.editingFinished.connect(self._path_edited)  # Return and Tab alike
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(self.browse_button)
        path_row.addWidget(self.demo_button)

        self.summary_label = QLabel("Choose a folder: its contents are counted before anything trains.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_progress = QProgressBar()
        self.summary_progress.hide()
        self.problems = QTreeWidget()
        self.problems.setHeaderLabels(["Problem", "Where", "Reason"])
        self.problems.setRootIsDecorated(False)
        self.problems.setAlternatingRowColors(True)
        layout = QVBoxLayout(self)
        layout.addLayout(path_row)
        layout.addWidget(self.summary_progress)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.problems, 1)

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to train on", self.path.text())
        if folder:
            self.folderChosen.emit(folder)

    def _path_edited(self) -> None:
        """Return or Tab in the path field: read the folder typed, unless it is the one already read."""
        text = self.path.text().strip()
        if text and resolved(text) != self.asked:
            self.folderChosen.emit(text)

    def read(self, folder: str, views) -> None:
        """Count ``folder`` in the background; the summary and the problems list fill when it is done."""
        self.path.setText(folder)
        self.asked = resolved(folder)
        self.problems.clear()
        self.summary_label.setText(f"Reading {folder}…")
        self.summary_progress.setRange(0, 0)
        self.summary_progress.show()
        self.cancel()
        worker = self.workers.start(
            lambda report, should_stop: summarize(folder, views, report, should_stop),
            name=f"summary {folder}",
            on_progress=lambda event: self._on_progress(worker, event),
            on_result=lambda result: self._on_summary(worker, *result),
            on_error=lambda message: self._on_error(worker, message),
        )
        self._worker = worker

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _on_progress(self, worker, event) -> None:
        if worker is self._worker and event.total:
            self.summary_progress.setRange(0, event.total)
            self.summary_progress.setValue(event.done)

    def _on_error(self, worker, message: str) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.summary_progress.hide()
        self.summary_label.setText(f"<span style='color:#e05050'>Cannot read this folder: {message}</span>")

    def _on_summary(self, worker, index, summary: FolderSummary) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.summary_progress.hide()
        s = summary
        lines = [
            f"<b>{LAYOUT_WORDS.get(s.layout, s.layout)}</b>",
            f"{s.patients} patients, {s.images} images ({s.cc_images} CC, {s.mlo_images} MLO), "
            f"{s.images_with_ground_truth} with ground truth",
            f"{s.lesions} lesions: <b>{s.malignant} malignant</b>, {s.benign} benign; {s.mass} mass, {s.calcification} calcification",
            f"Training would use {s.usable_images} {'/'.join(s.views)} images of {s.usable_patients} patients "
            f"({s.lesion_free_images} lesion-free)",
            f"Problems: {s.mask_problems} masks, {s.skipped_files} files (listed below)",
        ]
        if s.trainable:
            lines.append("<span style='color:#50b050'>Ready to train.</span>")
        else:
            lines += [f"<span style='color:#e05050'>Cannot train: {r}</span>" for r in s.reasons]
        self.summary_label.setText("<br>".join(lines))
        for problem in s.problems:
            item = QTreeWidgetItem([problem.kind, problem.where, problem.reason])
            item.setToolTip(1, problem.where)
            item.setToolTip(2, problem.reason)
            self.problems.addTopLevelItem(item)
        self.problems.resizeColumnToContents(0)
        self.problems.setColumnWidth(1, min(260, self.problems.sizeHintForColumn(1) + 12))
        self.summarized.emit(index, summary)
