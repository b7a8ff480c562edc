"""Tools → Retrain on folder: summary of a labelled folder, options, a training run in a child process, the safety gate.

1. **Folder**: the dialog indexes the folder in the background and shows what
   it holds before anything runs (layout, patients, images, lesions,
   benign/malignant, and each problem with its reason). "Demo studies" opens
   the built-in demo folder, which a file dialog hides (it is a dot folder).
2. **Options**: the last used ones (the paper's defaults the first time, and
   one click away: Adam 2e-4, batch 64, up to 200 epochs with early stop,
   0.1 mm and 1024 tiles); fine-tune the current model (its working resolution
   is kept) or start from scratch; the patient-level 70/30 split or a locked
   hold-out folder. Next to Start: how long the run will take, from a short
   real timing (:mod:`model.jobs.estimate`), and the held-out set the gate
   will use, with a warning when it is too small to decide.
3. **Run**: ``model.jobs.retrain`` trains in a child process, so a crash cannot
   take the viewer down and the reader goes on reading. The dialog follows its
   event file: epoch, batch, ETA, loss and validation Dice curves, the log.
   Cancel stops after the current batch and leaves no model. Closed, the dialog
   goes on following the run and reports it in one line (``runStatus``) for the
   main window's status bar. A paused or interrupted run offers Resume.
4. **Safety gate**: the current and the new model on the same held-out
   patients, in one table, with the held-out size behind each figure and "not
   measurable" where the set cannot give one (:func:`model.jobs.retrain.judge`).
   Nothing switches by itself: "Use new model" asks first when the new model
   is worse on any figure, then adds it to the registry and makes it active;
   "Keep current model" leaves all as is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.train.dataset_summary import FolderSummary, summarize_index
from model.jobs.estimate import RunEstimate, count_run, estimate, pick_timing_image, time_units_in_child
from model.jobs.retrain import (GATE_DICE_PROTOCOL, GATE_METRICS, LIVE_STATES, TRAINING_DICE_PROTOCOL, GateVerdict, Job,
                               JobSpec, accept, eta_text, judge, plan_held_out, reject, start_job)
from model.data.study_index import build_index
from model.train.loop import TrainConfig

from app.errors import describe
from app.background.workers import WorkerPool

log = logging.getLogger("bcir.app")

POLL_MS = 250
LOG_TAIL_BYTES = 64_000  # the log pane keeps the end of a long log
CANCEL_TIMEOUT_S = 30.0
ESTIMATE_DELAY_MS = 800  # options that change the timing are timed again once they stop changing for this long
LAYOUT_WORDS = {
    "cbis-ddsm": "CBIS-DDSM (TCIA tree with description CSVs)",
    "labelled-folder": "labelled folder (labels.csv)",
    "kaggle-jpeg": "Kaggle JPEG copy of CBIS-DDSM (dicom_info.csv)",
    "dicom-only": "DICOM files without labels",
    "empty": "no mammograms",
}
BETTER_COLOR = QColor(80, 190, 90)
WORSE_COLOR = QColor(230, 90, 70)
WARN_STYLE = "color:#e0a030"


class EpochAxis(pg.AxisItem):
    """Epochs are whole numbers: ticks only on integers, however few epochs there are."""

    def tickValues(self, minVal, maxVal, size):
        levels = super().tickValues(minVal, maxVal, size)
        out = []
        for spacing, values in levels:
            if spacing < 1:
                continue
            out.append((spacing, [v for v in values if abs(v - round(v)) < 1e-9]))
        if not out:
            first, last = int(math.ceil(minVal)), int(math.floor(maxVal))
            out = [(1.0, [float(v) for v in range(first, last + 1)])]
        return out


def _summarize(folder: str, views, report, should_stop):
    """The folder's index and its summary (the dialog keeps the index: the plan and the estimate count from it)."""
    import time

    start = time.perf_counter()
    index = build_index(folder, progress=report, should_stop=should_stop, workers=4)
    if should_stop():
        raise InterruptedError("folder summary cancelled")
    summary = summarize_index(index, views=views)
    summary.seconds = time.perf_counter() - start
    return index, summary


class RetrainDialog(QDialog):
    """Emits ``modelAccepted(entry)`` once the reader chose the new model (it is in the registry and active)."""

    modelAccepted = Signal(object)
    summaryReady = Signal(object)  # FolderSummary (tests wait on it)
    estimateReady = Signal(object)  # RunEstimate, once a timing has been made for the options shown
    jobFinished = Signal(str)  # the job's final state: done, cancelled, failed, paused, interrupted
    runStatus = Signal(str)  # one line on the run for the main window's status bar; "" when there is nothing to say

    AUTO_ESTIMATE = True  # time a few training steps once a folder is read (tests that do not need it switch it off)

    def __init__(self, workers: WorkerPool, current_model: Callable[[], Path | None], *, registry=None,
                 jobs_root: Path | None = None, settings=None, demo_root: str | Path | None = None,
                 parent: QWidget | None = None) -> None:
        """``current_model`` says which model the viewer uses now: the one to fine-tune and to compare with.

        ``settings`` (app.settings.Settings) remembers the options; ``demo_root`` is offered as "Demo studies".
        """
        super().__init__(parent)
        self.setWindowTitle("Retrain on folder")
        self.setModal(False)
        self.workers = workers
        self._current_model_source = current_model
        self.current_model = self._read_current_model()
        self.registry = registry
        self.jobs_root = jobs_root
        self.settings = settings
        self.demo_root = str(demo_root) if demo_root and Path(demo_root).is_dir() else None
        self.summary: FolderSummary | None = None
        self.index = None  # the StudyIndex the summary counted
        self.job: Job | None = None
        self.accepted_entry = None
        self.verdict: GateVerdict | None = None
        self.estimate: RunEstimate | None = None
        self.start_prompt: QMessageBox | None = None  # "the held-out set is too small" before a start
        self.confirm_box: QMessageBox | None = None  # "the new model is worse" before a switch
        # TrainConfig fields set by code rather than by the form (a scripted site's settings, quick test runs)
        self.config_overrides: dict = {}
        self._summary_worker = None
        self._folder_asked: str | None = None
        self._holdout_index = None
        self._holdout_asked: str | None = None
        self._holdout_worker = None
        self._units: dict[tuple, object] = {}  # timing key -> UnitTimes
        self._estimate_worker = None
        self._estimate_key: tuple | None = None
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(ESTIMATE_DELAY_MS)
        self._estimate_timer.timeout.connect(self.estimate_time)
        self._events_offset = 0
        self._log_offset = 0
        self._epochs = 0
        self._status = ""
        self._progress_words = ""
        self._ended = True  # the followed job has reached an end state (or there is none)
        self._history: dict[str, list[tuple[int, float]]] = {"train_loss": [], "val_loss": [], "val_dice": []}
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_setup_page())
        self.pages.addWidget(self._build_run_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.resize(1000, 880)
        for button in self.findChildren(QPushButton):  # Return in a text field must never press a button
            button.setAutoDefault(False)
            button.setDefault(False)
        self.apply_options(settings.retrain_options() if settings is not None else {})
        self._connect_option_changes()

    # ------------------------------------------------------------------ page 1: folder and options

    def _build_setup_page(self) -> QWidget:
        page = QWidget()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a CBIS-DDSM download, a labelled folder (labels.csv) or the Kaggle JPEG copy")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._ask_folder)
        self.browse_button = browse
        self.demo_button = QPushButton("Demo studies")
        self.demo_button.setToolTip(f"the built-in synthetic studies ({self.demo_root})" if self.demo_root else "")
        self.demo_button.clicked.connect(lambda: self.set_folder(self.demo_root))
        self.demo_button.setVisible(self.demo_root is not None)
        self.folder.editingFinished.connect(self._folder_edited)  # Return and Tab alike
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        row.addWidget(self.demo_button)

        self.summary_label = QLabel("Choose a folder: its contents are counted before anything trains.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_progress = QProgressBar()
        self.summary_progress.hide()
        self.problems = QTreeWidget()
        self.problems.setHeaderLabels(["Problem", "Where", "Reason"])
        self.problems.setRootIsDecorated(False)
        self.problems.setAlternatingRowColors(True)
        folder_box = QGroupBox("1. Folder")
        folder_layout = QVBoxLayout(folder_box)
        folder_layout.addLayout(row)
        folder_layout.addWidget(self.summary_progress)
        folder_layout.addWidget(self.summary_label)
        folder_layout.addWidget(self.problems, 1)

        paper = TrainConfig()
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(paper.max_epochs)
        self.epochs.setToolTip("at most this many epochs; training stops earlier when the epoch loss changes by < 0.001")
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setValue(paper.batch_size)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(paper.lr)
        self.spacing = QDoubleSpinBox()
        self.spacing.setDecimals(3)
        self.spacing.setRange(0.05, 2.0)
        self.spacing.setSingleStep(0.05)
        self.spacing.setSuffix(" mm")
        self.spacing.setValue(paper.working_spacing_mm)
        self.tile = QSpinBox()
        self.tile.setRange(32, 2048)
        self.tile.setSingleStep(32)
        self.tile.setValue(paper.tile)
        self.tile.setSuffix(" px")
        self.augment = QSpinBox()
        self.augment.setRange(1, 100)
        self.augment.setValue(paper.augment_factor)
        self.augment.setToolTip("virtual expansion per case by random affine warps (the paper: x40)")
        self.views = QComboBox()
        self.views.addItem("CC (the paper)", ("CC",))
        self.views.addItem("CC and MLO", ("CC", "MLO"))
        self.device = QComboBox()
        self.device.addItems(self._devices())
        self.minutes = QSpinBox()
        self.minutes.setRange(0, 100_000)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("stop after the last epoch that fits this time")

        self.fine_tune = QRadioButton("Fine-tune the current model")
        self.scratch = QRadioButton("Start from scratch")
        start_group = QButtonGroup(self)
        for button in (self.fine_tune, self.scratch):
            start_group.addButton(button)
        (self.fine_tune if self.current_model else self.scratch).setChecked(True)
        self.fine_tune.setEnabled(self.current_model is not None)
        self.fine_tune.toggled.connect(self._on_start_point)
        self.split = QRadioButton("Patient-level 70/30 split of this folder")
        self.locked = QRadioButton("Locked hold-out folder:")
        split_group = QButtonGroup(self)
        for button in (self.split, self.locked):
            split_group.addButton(button)
        self.split.setChecked(True)
        self.holdout = QLineEdit()
        self.holdout.setPlaceholderText("a labelled folder never trained on")
        self.holdout.editingFinished.connect(self._holdout_edited)
        holdout_browse = QPushButton("Browse…")
        holdout_browse.clicked.connect(self._ask_holdout)
        holdout_row = QHBoxLayout()
        holdout_row.addWidget(self.locked)
        holdout_row.addWidget(self.holdout, 1)
        holdout_row.addWidget(holdout_browse)

        self.defaults_button = QPushButton("Paper's defaults")
        self.defaults_button.setToolTip("set every option back to the paper's settings (a fine-tune keeps the "
                                        "current model's working resolution)")
        self.defaults_button.clicked.connect(self.reset_options)
        options = QGroupBox("2. Options (as last used)")
        form = QFormLayout(options)
        form.addRow("Start from", self._row(self.fine_tune, self.scratch))
        form.addRow("Held-out patients", self.split)
        form.addRow("", self._wrap(holdout_row))
        form.addRow("Epochs (at most)", self.epochs)
        form.addRow("Batch size", self.batch)
        form.addRow("Learning rate", self.lr)
        form.addRow("Working resolution", self._row(self.spacing, QLabel("tile"), self.tile))
        form.addRow("Augmentation", self.augment)
        form.addRow("Views", self.views)
        form.addRow("Device", self.device)
        form.addRow("Time budget", self.minutes)
        form.addRow("", self._row(self.defaults_button))
        self.setup_message = QLabel()
        self.setup_message.setWordWrap(True)
        self.refresh_current_model()

        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.TextFormat.RichText)
        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        # a wrapped label under a stretching splitter is given one line otherwise: the estimate takes two or three
        self.estimate_label.setMinimumHeight(3 * self.estimate_label.fontMetrics().lineSpacing())
        self.start_button = QPushButton("Start training")
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(lambda: self.start())
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.setup_message, 1)
        buttons.addWidget(close)
        buttons.addWidget(self.start_button)

        layout = QVBoxLayout(page)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(folder_box)
        split.addWidget(options)
        split.setSizes([520, 440])
        layout.addWidget(split, 1)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.estimate_label)  # right above Start, the whole width: the estimate is two lines long
        layout.addLayout(buttons)
        return page

    @staticmethod
    def _row(*widgets) -> QWidget:
        box = QHBoxLayout()
        box.setContentsMargins(0, 0, 0, 0)
        for w in widgets:
            box.addWidget(w)
        box.addStretch(1)
        return RetrainDialog._wrap(box)

    @staticmethod
    def _wrap(layout) -> QWidget:
        widget = QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        widget.setLayout(layout)
        return widget

    @staticmethod
    def _devices() -> list[str]:
        import torch

        devices = ["auto", "cpu"]
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return devices

    def _read_current_model(self) -> Path | None:
        path = self._current_model_source()
        return Path(path) if path else None

    def refresh_current_model(self) -> None:
        """The setup page shows the model the viewer uses now (it may have changed since the dialog opened)."""
        self.current_model = self._read_current_model()
        self.fine_tune.setEnabled(self.current_model is not None)
        self.fine_tune.setText(f"Fine-tune the current model ({self._version_of(self.current_model)})"
                               if self.current_model else "Fine-tune the current model (none loaded)")
        if self.current_model is None and self.fine_tune.isChecked():
            self.scratch.setChecked(True)
        self._on_start_point(self.fine_tune.isChecked())

    @staticmethod
    def _version_of(path: Path) -> str:
        from model.nn.weights import read_card

        try:
            return str(read_card(path).get("model_version", path.stem))
        except Exception:  # noqa: BLE001 - a label; the start checks the model properly
            return path.stem

    def show_setup(self) -> None:
        """"Train again…": the options page, with the model now in use; the last run's bar and gate stay behind."""
        self.refresh_current_model()
        self.setup_message.clear()
        self.pages.setCurrentIndex(0)

    def _on_start_point(self, fine_tune: bool) -> None:
        """Fine-tuning keeps the current model's working resolution: the network learnt its scale."""
        if fine_tune and self.current_model is not None:
            from model.nn.weights import read_card

            try:
                card = read_card(self.current_model)
            except Exception as exc:  # noqa: BLE001 - the dialog says why and offers scratch instead
                self.setup_message.setText(f"The current model cannot be fine-tuned: {describe(exc)}")
                self.scratch.setChecked(True)
                return
            self.spacing.setValue(float((card.get("preprocess") or {}).get("working_spacing_mm", self.spacing.value())))
            self.tile.setValue(int(card.get("tile_size", self.tile.value())))
        self.spacing.setEnabled(not fine_tune)
        self.tile.setEnabled(not fine_tune)

    # ------------------------------------------------------------------ the options, remembered

    def options(self) -> dict:
        """The form as saved in the reader's settings."""
        return {"max_epochs": self.epochs.value(), "batch_size": self.batch.value(), "lr": self.lr.value(),
                "working_spacing_mm": self.spacing.value(), "tile": self.tile.value(),
                "augment_factor": self.augment.value(), "views": list(self.views.currentData()),
                "device": self.device.currentText(), "max_minutes": self.minutes.value(),
                "start": "fine-tune" if self.fine_tune.isChecked() else "scratch",
                "held_out": "locked" if self.locked.isChecked() else "split", "holdout": self.holdout.text().strip()}

    def apply_options(self, options: dict) -> None:
        """Fill the form from saved options; a value that is missing or no longer valid keeps the form's."""
        spins = {"max_epochs": self.epochs, "batch_size": self.batch, "lr": self.lr, "working_spacing_mm": self.spacing,
                 "tile": self.tile, "augment_factor": self.augment, "max_minutes": self.minutes}
        for key, spin in spins.items():
            value = options.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and spin.minimum() <= value <= spin.maximum():
                spin.setValue(value)
        views = options.get("views")
        for i in range(self.views.count()):
            if isinstance(views, list) and list(self.views.itemData(i)) == views:
                self.views.setCurrentIndex(i)
        if options.get("device") in [self.device.itemText(i) for i in range(self.device.count())]:
            self.device.setCurrentText(options["device"])
        if options.get("start") == "scratch":
            self.scratch.setChecked(True)
        elif options.get("start") == "fine-tune" and self.current_model is not None:
            self.fine_tune.setChecked(True)
        if isinstance(options.get("holdout"), str):
            self.holdout.setText(options["holdout"])
        if options.get("held_out") == "locked" and self.holdout.text().strip():
            self.locked.setChecked(True)
            self._holdout_edited()
        elif options.get("held_out") == "split":
            self.split.setChecked(True)
        self._on_start_point(self.fine_tune.isChecked())

    def reset_options(self) -> None:
        """The paper's settings (a fine-tune keeps the current model's working resolution)."""
        paper = TrainConfig()
        self.apply_options({"max_epochs": paper.max_epochs, "batch_size": paper.batch_size, "lr": paper.lr,
                            "working_spacing_mm": paper.working_spacing_mm, "tile": paper.tile,
                            "augment_factor": paper.augment_factor, "views": list(paper.views), "device": paper.device,
                            "max_minutes": 0, "held_out": "split"})

    def _connect_option_changes(self) -> None:
        for spin in (self.epochs, self.batch, self.augment, self.minutes, self.lr):
            spin.valueChanged.connect(lambda *_: self._show_estimate())  # counts change, the timing does not
        for spin in (self.spacing, self.tile):
            spin.valueChanged.connect(lambda *_: self._schedule_estimate())
        self.views.currentIndexChanged.connect(lambda *_: self._schedule_estimate())
        self.device.currentIndexChanged.connect(lambda *_: self._schedule_estimate())
        self.fine_tune.toggled.connect(lambda *_: self._schedule_estimate())
        self.locked.toggled.connect(lambda *_: self._show_estimate())

    # ------------------------------------------------------------------ choosing the folders

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to train on", self.folder.text())
        if folder:
            self.set_folder(folder)

    def _folder_edited(self) -> None:
        """Return or Tab in the path field: read the folder typed, unless it is the one already read."""
        text = self.folder.text().strip()
        if text and self._resolved(text) != self._folder_asked:
            self.set_folder(text)

    @staticmethod
    def _resolved(path: str) -> str:
        return str(Path(path).expanduser().resolve())

    def _ask_holdout(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Locked hold-out folder", self.holdout.text())
        if folder:
            self.holdout.setText(folder)
            self.locked.setChecked(True)
            self._holdout_edited()

    def _holdout_edited(self) -> None:
        """Count the locked hold-out folder in the background: its size goes into the held-out plan."""
        text = self.holdout.text().strip()
        if not text or self._resolved(text) == self._holdout_asked:
            return
        folder = self._resolved(text)
        self._holdout_asked = folder
        self._holdout_index = None
        if self._holdout_worker is not None:
            self._holdout_worker.cancel()
        self.plan_label.setText(f"Counting the hold-out folder {folder}…")

        def done(worker, index) -> None:
            if worker is self._holdout_worker:
                self._holdout_worker = None
                self._holdout_index = index
                self._show_estimate()

        def failed(worker, message) -> None:
            if worker is self._holdout_worker:
                self._holdout_worker = None
                self.plan_label.setText(f"<span style='color:#e05050'>Cannot read the hold-out folder: {message}</span>")

        worker = self.workers.start(lambda report, should_stop: build_index(folder, should_stop=should_stop, workers=2),
                                    name=f"hold-out {folder}", on_result=lambda index: done(worker, index),
                                    on_error=lambda message: failed(worker, message))
        self._holdout_worker = worker

    def set_folder(self, folder: str | Path) -> None:
        """Count the folder in the background; the summary and the problems list fill when it is done."""
        folder = str(Path(folder).expanduser())
        self.folder.setText(folder)
        self._folder_asked = self._resolved(folder)
        self.summary = None
        self.index = None
        self.estimate = None
        self.start_button.setEnabled(False)
        self.problems.clear()
        self.plan_label.clear()
        self.estimate_label.clear()
        self.summary_label.setText(f"Reading {folder}…")
        self.summary_progress.setRange(0, 0)
        self.summary_progress.show()
        if self._summary_worker is not None:
            self._summary_worker.cancel()
        views = self.views.currentData()
        worker = self.workers.start(
            lambda report, should_stop: _summarize(folder, views, report, should_stop),
            name=f"summary {folder}",
            on_progress=lambda event: self._on_summary_progress(worker, event),
            on_result=lambda result: self._on_summary(worker, *result),
            on_error=lambda message: self._on_summary_error(worker, message),
        )
        self._summary_worker = worker

    def _on_summary_progress(self, worker, event) -> None:
        if worker is self._summary_worker and event.total:
            self.summary_progress.setRange(0, event.total)
            self.summary_progress.setValue(event.done)

    def _on_summary_error(self, worker, message: str) -> None:
        if worker is not self._summary_worker:
            return
        self._summary_worker = None
        self.summary_progress.hide()
        self.summary_label.setText(f"<span style='color:#e05050'>Cannot read this folder: {message}</span>")

    def _on_summary(self, worker, index, summary: FolderSummary) -> None:
        if worker is not self._summary_worker:
            return
        self._summary_worker = None
        self.summary_progress.hide()
        self.summary = summary
        self.index = index
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
        self.start_button.setEnabled(s.trainable)
        self.summaryReady.emit(s)
        self._show_estimate()
        if s.trainable and self.AUTO_ESTIMATE:
            self._schedule_estimate()

    # ------------------------------------------------------------------ the held-out plan and the time estimate

    def plan(self) -> dict | None:
        """The held-out set the gate will use with these options (model.jobs.retrain.plan_held_out); None while the
        folder, or the locked hold-out folder, is still being counted."""
        if self.index is None or self.summary is None or not self.summary.trainable:
            return None
        holdout = None
        if self.locked.isChecked():
            if self._holdout_index is None or self._holdout_asked != self._resolved(self.holdout.text().strip() or "."):
                return None
            holdout = self._holdout_index
        return plan_held_out(self.index, self.spec().train_config(), holdout_index=holdout)

    def _timing_key(self, config: TrainConfig) -> tuple:
        return (config.tile, config.working_spacing_mm, config.device, tuple(config.views), config.init_weights,
                config.micro_batch, config.bf16, self._folder_asked, str(self.current_model))

    def _schedule_estimate(self) -> None:
        self._show_estimate()
        if self.AUTO_ESTIMATE and self.index is not None and self.summary is not None and self.summary.trainable:
            self._estimate_timer.start()

    def estimate_time(self) -> None:
        """Time a few training steps on this machine (in a child process) for the options shown, unless done already."""
        if self.index is None or self.summary is None or not self.summary.trainable:
            return
        config = self.spec().train_config()
        key = self._timing_key(config)
        if key in self._units:
            self._show_estimate()
            return
        if self._estimate_worker is not None:
            if self._estimate_key == key:
                return
            self._estimate_worker.cancel()
        image = pick_timing_image(self.index, config)
        base_model = self.spec().base_model  # the gate's current model, read at its own resolution
        self._estimate_key = key
        self.estimate_label.setText("Timing a few training steps on this machine for an estimate…")

        def done(worker, units) -> None:
            if worker is self._estimate_worker:
                self._estimate_worker = None
            self._units[key] = units
            self._show_estimate()

        def failed(worker, message) -> None:
            if worker is self._estimate_worker:
                self._estimate_worker = None
                self.estimate_label.setText(f"No time estimate: {message}")

        worker = self.workers.start(
            lambda report, should_stop: time_units_in_child(config, image, base_model=base_model,
                                                            should_stop=should_stop),
            name="retrain time estimate", on_result=lambda units: done(worker, units),
            on_error=lambda message: failed(worker, message))
        self._estimate_worker = worker

    def _show_estimate(self) -> None:
        """The plan line and the estimate for the options as they are now (the counts are quick; only a change of
        tile, resolution, device, views or start point needs a new timing)."""
        plan = self.plan()
        if plan is None:
            if self.index is not None and self.locked.isChecked():
                self.plan_label.setText("Choose the locked hold-out folder: its size is counted before the start."
                                        if not self.holdout.text().strip() else "Counting the hold-out folder…")
            return
        held = (f"Held out for the safety gate ({'locked hold-out folder' if plan['rule'] == 'holdout-folder' else '70/30 split'}): "
                f"{plan['patients']} patients, {plan['images']} {'/'.join(plan['views'])} images, {plan['lesions']} lesions "
                f"({plan['malignant']} malignant, {plan['benign']} benign).")
        if plan["warnings"]:
            held += (f"<br><span style='{WARN_STYLE}'><b>Too small to decide between two models:</b> "
                     + "; ".join(plan["warnings"]) + ". A larger folder or a locked hold-out folder helps.</span>")
        self.plan_label.setText(held)
        config = self.spec().train_config()
        units = self._units.get(self._timing_key(config))
        if units is None:
            if self._estimate_worker is None:
                self.estimate_label.setText("")
            return
        self.estimate = estimate(count_run(self.index, config, gate_images=plan["images"],
                                           index_s=self.summary.seconds), units)
        self.estimate_label.setText(f"Estimate: {self.estimate.text()} (the timing took {units.seconds:.0f} s).")
        self.estimateReady.emit(self.estimate)

    # ------------------------------------------------------------------ starting

    def spec(self) -> JobSpec:
        """The job the options describe (the paper's TrainConfig with the reader's changes)."""
        config = TrainConfig(
            max_epochs=self.epochs.value(), batch_size=self.batch.value(), lr=self.lr.value(),
            working_spacing_mm=self.spacing.value(), tile=self.tile.value(), augment_factor=self.augment.value(),
            views=self.views.currentData(), device=self.device.currentText(),
            micro_batch=min(TrainConfig().micro_batch, self.batch.value()),
            max_minutes=float(self.minutes.value()) or None,
        )
        config = TrainConfig.from_json({**config.to_json(), **self.config_overrides})
        fine_tune = self.fine_tune.isChecked() and self.current_model is not None
        holdout = self.holdout.text().strip() if self.locked.isChecked() else None
        return JobSpec(root=self.folder.text().strip(), config=config.to_json(),
                       base_model=str(self.current_model) if self.current_model else None, fine_tune=fine_tune,
                       holdout_root=holdout or None, data_summary=self.summary.to_json() if self.summary else None)

    def start(self, *, small_held_out_ok: bool = False) -> Job | None:
        """Start the run the form describes. When the held-out set is too small to decide, ask first (the answer
        comes back through ``start_prompt``) and return None."""
        if self.current_model != self._read_current_model():  # switched meanwhile: fine-tune and compare the one in use
            self.refresh_current_model()
            self.setup_message.setText("The model in use changed: check the options, then start again.")
            return None
        if self.summary is None or not self.summary.trainable:
            self.setup_message.setText("Choose a folder that can be trained on first.")
            return None
        if self.locked.isChecked() and not self.holdout.text().strip():
            self.setup_message.setText("Choose the locked hold-out folder, or use the 70/30 split.")
            return None
        plan = self.plan()
        if plan is None:
            self.setup_message.setText("The hold-out folder is still being counted: start again in a moment.")
            return None
        if plan["warnings"] and not small_held_out_ok:
            self._ask_start_small(plan)
            return None
        try:
            job = start_job(self.spec(), self.jobs_root)
        except Exception as exc:  # noqa: BLE001 - one line in the dialog, the viewer stays up
            self.setup_message.setText(f"Could not start: {describe(exc)}")
            return None
        log.info("retrain job %s started", job.id)
        if self.settings is not None:
            self.settings.save_retrain_options(self.options())
        self.setup_message.clear()
        self.attach(job)
        return job

    def _ask_start_small(self, plan: dict) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Held-out set too small",
                          f"The safety gate would compare the two models on {plan['patients']} patients and "
                          f"{plan['lesions']} lesions ({plan['malignant']} malignant, {plan['benign']} benign):\n\n"
                          + "\n".join(f"• {w}" for w in plan["warnings"])
                          + "\n\nIts table will not be able to say which model is better. Start anyway?",
                          QMessageBox.StandardButton.NoButton, self)
        anyway = box.addButton("Start anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def chosen(button) -> None:
            self.start_prompt = None
            if button is anyway:
                self.start(small_held_out_ok=True)

        box.buttonClicked.connect(chosen)
        box.show()
        self.start_prompt = box

    # ------------------------------------------------------------------ page 2: the run and the gate

    def _build_run_page(self) -> QWidget:
        page = QWidget()
        self.run_title = QLabel()
        self.run_title.setWordWrap(True)
        self.run_title.setTextFormat(Qt.TextFormat.RichText)
        self.run_state = QLabel()
        self.run_state.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        pg.setConfigOptions(antialias=True)
        self.loss_plot = pg.PlotWidget(axisItems={"bottom": EpochAxis("bottom")})
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_plot.setLabel("left", "loss")
        # the legend as the title: inside the plot it would sit on a curve sooner or later
        self.loss_plot.setTitle("<span style='color:#4da3ff'>━ training loss</span>&nbsp;&nbsp;&nbsp;"
                                "<span style='color:#ff9f40'>━ validation loss</span>", size="9pt")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.25)
        self.train_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#4da3ff", width=2), symbol="o", symbolSize=5,
                                               symbolBrush="#4da3ff")
        self.val_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#ff9f40", width=2), symbol="o", symbolSize=5,
                                             symbolBrush="#ff9f40")
        self.dice_plot = pg.PlotWidget(axisItems={"bottom": EpochAxis("bottom")})
        self.dice_plot.setLabel("bottom", "epoch")
        self.dice_plot.setLabel("left", "validation Dice (ROI tiles)")
        self.dice_plot.setTitle("<span style='color:#ffff40'>━ validation Dice, training protocol: ROI tiles</span>",
                                size="9pt")
        self.dice_plot.setToolTip(f"Validation Dice on the curve: {TRAINING_DICE_PROTOCOL}.\nThe safety gate's Dice: "
                                  f"{GATE_DICE_PROTOCOL}.\nThe two measure different things and differ.")
        self.dice_plot.setYRange(0, 1)
        self.dice_plot.showGrid(x=True, y=True, alpha=0.25)
        self.dice_curve = self.dice_plot.plot([], [], pen=pg.mkPen("#ffff40", width=2), symbol="o", symbolSize=5,
                                              symbolBrush="#ffff40")
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.dice_plot)
        for plot in (self.loss_plot, self.dice_plot):
            plot.setMinimumHeight(230)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.log_view.setFont(font)

        self.gate_box = QGroupBox("Safety gate: current and new model on the same held-out patients")
        self.gate_description = QLabel()
        self.gate_description.setWordWrap(True)
        self.gate_description.setTextFormat(Qt.TextFormat.RichText)
        self.gate_table = QTableWidget(len(GATE_METRICS), 4)
        self.gate_table.setHorizontalHeaderLabels(["Current model", "New model", "Better", "Held out"])
        self.gate_table.setVerticalHeaderLabels([label for _, label, _ in GATE_METRICS])
        self.gate_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.gate_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.gate_table.setFixedHeight(self.gate_table.verticalHeader().length() + self.gate_table.horizontalHeader().height() + 4)
        self.gate_notes = QLabel()
        self.gate_notes.setWordWrap(True)
        self.use_button = QPushButton("Use new model")
        self.keep_button = QPushButton("Keep current model")
        self.use_button.clicked.connect(lambda: self.use_new_model())
        self.keep_button.clicked.connect(self.keep_current_model)
        decide = QHBoxLayout()
        decide.addStretch(1)
        decide.addWidget(self.keep_button)
        decide.addWidget(self.use_button)
        gate_layout = QVBoxLayout(self.gate_box)
        gate_layout.addWidget(self.gate_description)
        gate_layout.addWidget(self.gate_table)
        gate_layout.addWidget(self.gate_notes)
        gate_layout.addLayout(decide)
        self.gate_box.hide()

        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("continue after the last complete epoch")
        self.resume_button.clicked.connect(self.resume)
        self.resume_button.hide()
        self.new_button = QPushButton("Train again…")
        self.new_button.clicked.connect(self.show_setup)
        self.new_button.hide()
        close = QPushButton("Close (training goes on)")
        close.clicked.connect(self.close)
        self.close_button = close
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_state, 1)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(page)
        layout.addWidget(self.run_title)
        layout.addWidget(self.progress)
        layout.addLayout(plots, 2)
        layout.addWidget(self.gate_box)
        layout.addWidget(self.log_view, 1)
        layout.addLayout(buttons)
        self.log_view.setMinimumHeight(90)
        return page

    def attach(self, job: Job) -> None:
        """Follow ``job`` (just started, resumed, or found running at start-up) from its first event."""
        self.job = job
        self.verdict = None
        self._ended = False
        self._events_offset = self._log_offset = 0
        self._epochs = 0
        self._progress_words = "starting"
        for values in self._history.values():
            values.clear()
        self.log_view.clear()
        self.gate_box.hide()
        self.use_button.setEnabled(True)
        self.keep_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.new_button.hide()
        self.resume_button.hide()
        self.close_button.setText("Close (training goes on)")
        spec = job.spec()
        start = "fine-tuning the current model" if spec.fine_tune else "from scratch"
        held = f"locked hold-out folder {spec.holdout_root}" if spec.holdout_root else "70/30 patient split"
        self.run_title.setText(f"<b>Training on</b> {spec.root}<br>{start}; held out: {held}; job {job.id}")
        self.run_state.setText("starting…")
        self.progress.setValue(0)
        self.progress.setFormat("starting…")  # not the last run's "done"
        self.pages.setCurrentIndex(1)
        self._update_curves()
        self.poll()
        if self.job is job and not self._ended:
            self._timer.start()

    def poll(self) -> None:
        """Read what the child wrote since the last tick: events, log lines, state."""
        if self.job is None:
            return
        events, self._events_offset = self.job.events(self._events_offset)
        for event in events:
            self._on_event(event)
        self._tail_log()
        state = self.job.state()
        kind = state.get("state")
        if kind in ("done", "cancelled", "failed"):
            self._finished(state)
        elif kind == "paused" and not self.job.is_alive():
            self._finished(state)
        elif kind == "unknown" and not self.job.dir.is_dir():
            self._finished({"state": "failed", "message": f"the job folder {self.job.dir} is gone"})
        elif not self.job.is_alive() and state.get("pid"):
            resumable = self.job.resumable()
            self._finished({**state, "state": "interrupted",
                            "message": "the training process is gone (killed?)"
                                       + ("; Resume continues it" if resumable else "; nothing to resume from")})
        else:
            self._set_status(f"Retrain: {self._progress_words}")

    def _set_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.runStatus.emit(text)

    @property
    def status_text(self) -> str:
        return self._status

    def _on_event(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "prepare":
            done, total = event.get("batch", 0), event.get("batches", 0)
            self.run_state.setText(f"preparing: {event.get('message', '')}" + (f" {done}/{total}" if total else ""))
            self._progress_words = "preparing the images"
        elif kind == "epoch_start":
            self._epochs = event.get("epochs", 0)
        elif kind == "batch":
            epoch, epochs = event.get("epoch", 1), event.get("epochs", 1) or 1
            batch, batches = event.get("batch", 0), event.get("batches", 1) or 1
            value = int(1000 * ((epoch - 1) + batch / batches) / epochs)
            self.progress.setValue(value)
            self.progress.setFormat(f"epoch {epoch}/{epochs} · batch {batch}/{batches} · %p%")
            loss = event.get("loss")
            eta = f" · ETA {eta_text(event.get('eta_s'))}" if event.get("eta_s") else ""
            self.run_state.setText(f"training: loss {loss:.4f}{eta}" if loss is not None else "training…")
            self._progress_words = f"epoch {epoch}/{epochs}, {value // 10}%{eta}"
        elif kind == "epoch_end":
            metrics = event.get("metrics") or {}
            epoch = event.get("epoch", 0)
            for key in self._history:
                if metrics.get(key) is not None:
                    self._history[key].append((epoch, float(metrics[key])))
            self._update_curves()
        elif kind in ("early_stop", "cancelled", "paused", "interrupted"):
            self.run_state.setText(event.get("message", kind))
        elif kind == "gate_progress":
            self.progress.setFormat(f"safety gate: {event.get('model')} model {event.get('done')}/{event.get('total')} images")
            total = event.get("total") or 1
            self.progress.setValue(int(1000 * event.get("done", 0) / total))
            self.run_state.setText("safety gate: evaluating the current and the new model…")
            self._progress_words = "safety gate"
        elif kind == "failed":
            self.run_state.setText(f"failed: {event.get('message', '')}")

    def _update_curves(self) -> None:
        for curve, key in ((self.train_curve, "train_loss"), (self.val_curve, "val_loss"), (self.dice_curve, "val_dice")):
            points = self._history[key]
            curve.setData([p[0] for p in points], [p[1] for p in points])

    def curve_points(self, key: str) -> list[tuple[int, float]]:
        return list(self._history[key])

    def _tail_log(self) -> None:
        try:
            with open(self.job.log_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                start = max(self._log_offset, size - LOG_TAIL_BYTES)
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._log_offset = start + end + 1
        text = data[: end + 1].decode("utf-8", errors="replace").rstrip("\n")
        if text:
            self.log_view.appendPlainText(text)

    def _finished(self, state: dict) -> None:
        self._timer.stop()
        self._ended = True
        events, self._events_offset = self.job.events(self._events_offset)  # what came with the end
        for event in events:
            self._on_event(event)
        self._tail_log()
        kind = state.get("state")
        self.cancel_button.hide()
        self.new_button.show()
        self.close_button.setText("Close")
        self.resume_button.setVisible(kind in ("paused", "interrupted") and self.job.dir.is_dir() and self.job.resumable())
        if kind == "done":
            self.progress.setValue(1000)
            self.progress.setFormat("done")
            self._show_gate()
        elif kind in ("paused", "interrupted"):
            self.progress.setFormat(f"{kind} · %p%")
        self.run_state.setText(f"{kind}: {state.get('message', '')}")
        decision = self.job.decision() if self.job.dir.is_dir() else None
        if decision is not None:  # a job reopened after the reader chose
            self.run_state.setText(f"decided: {'the new model was put in use' if decision == 'accepted' else 'the current model was kept'}")
        self._set_status({"done": "" if decision else "Retrain done: the safety gate waits for your choice",
                          "paused": "Retrain paused: Resume is in the Retrain window",
                          "interrupted": "Retrain interrupted", "failed": "Retrain failed: see the Retrain window"}
                         .get(kind, ""))
        self.jobFinished.emit(kind)

    def _show_gate(self) -> None:
        comparison = self.job.comparison() or {}
        self.verdict = verdict = judge(comparison)
        rows = {r["model"]: r for r in comparison.get("rows", [])}
        current, new = rows.get("current"), rows.get("new")
        self.gate_table.setHorizontalHeaderLabels([
            f"Current: {current.get('version') or '?'}" if current and current.get("available") else "Current model",
            f"New: {new.get('version') or '?'}" if new and new.get("available") else "New model", "Better",
            "Held out"])
        for r, figure in enumerate(verdict.figures):
            for c, text in enumerate((figure.current_text, figure.new_text)):
                if figure.not_measurable and text == figure.not_measurable:
                    text = text.split(" (")[0]  # "not measurable: one class only"; the counts are in "Held out"
                item = QTableWidgetItem(text)
                if figure.not_measurable:
                    item.setToolTip(figure.not_measurable)
                self.gate_table.setItem(r, c, item)
            item = QTableWidgetItem({"new": "new", "current": "current", "tie": "tie"}.get(figure.verdict, "—"))
            if figure.verdict in ("new", "current"):
                item.setForeground(QBrush(BETTER_COLOR if figure.verdict == "new" else WORSE_COLOR))
            self.gate_table.setItem(r, 2, item)
            self.gate_table.setItem(r, 3, QTableWidgetItem(figure.held_out))
        text = [f"Held out: {comparison.get('description', '?')}.",
                f"Figures here: {comparison.get('protocol') or GATE_DICE_PROTOCOL}. The curve's validation Dice uses the "
                "training protocol (ROI tiles centred on the lesions), so it differs from the Dice here."]
        if verdict.warnings:
            text.append(f"<span style='{WARN_STYLE}'><b>Too few held-out cases to decide:</b> "
                        + "; ".join(verdict.warnings) + ".</span>")
        if verdict.worse:
            text.append(f"<span style='color:#e05050'>The new model is worse on {len(verdict.worse)} of "
                        f"{len(verdict.figures)} figures: {', '.join(f.label for f in verdict.worse)}.</span>")
        self.gate_description.setText("<br>".join(text))
        notes = comparison.get("notes") or []
        self.gate_notes.setText("<br>".join(f"• {n}" for n in notes))
        decision = self.job.decision()
        self.use_button.setEnabled(decision is None and new is not None and new.get("available", False))
        self.keep_button.setEnabled(decision is None)
        self.gate_box.show()

    def gate_cells(self) -> list[list[str]]:
        return [[self.gate_table.item(r, c).text() if self.gate_table.item(r, c) else ""
                 for c in range(self.gate_table.columnCount())] for r in range(self.gate_table.rowCount())]

    # ------------------------------------------------------------------ the reader's choices

    def cancel(self) -> None:
        if self.job is None:
            return
        self.cancel_button.setEnabled(False)
        self.run_state.setText("stopping after the current batch…")
        job = self.job
        self.workers.start(lambda report, should_stop: job.cancel(timeout=CANCEL_TIMEOUT_S), name=f"cancel {job.id}",
                           on_error=lambda message: self.run_state.setText(f"cancel: {message}"))

    def resume(self) -> Job | None:
        """Continue a paused or interrupted run after its last complete epoch."""
        if self.job is None:
            return None
        try:
            self.job.resume()
        except Exception as exc:  # noqa: BLE001 - one line, the dialog stays
            self.run_state.setText(f"Could not resume: {describe(exc)}")
            return None
        self.attach(self.job)
        return self.job

    def use_new_model(self, *, confirmed: bool = False):
        """Put the new model in use. When the gate found it worse on any figure, ask first (``confirm_box``) and
        return None; the reader's "Use it anyway" comes back here with ``confirmed``."""
        if self.verdict is not None and self.verdict.worse and not confirmed:
            self._ask_use_worse(self.verdict)
            return None
        try:
            entry = accept(self.job, self.registry, force=confirmed)
        except Exception as exc:  # noqa: BLE001
            self.run_state.setText(f"Could not use the new model: {describe(exc)}")
            return None
        self.accepted_entry = entry
        self.use_button.setEnabled(False)
        self.keep_button.setEnabled(False)
        self.run_state.setText(f"Now using {entry.version}; Tools → Models lists every version and switches back.")
        self._set_status("")
        self.modelAccepted.emit(entry)
        return entry

    def _ask_use_worse(self, verdict: GateVerdict) -> None:
        lines = "\n".join(f"• {line}" for line in verdict.worse_lines())
        small = ("\n\nThe held-out set is also too small to decide:\n" + "\n".join(f"• {w}" for w in verdict.warnings)
                 if verdict.warnings else "")
        box = QMessageBox(QMessageBox.Icon.Warning, "Use a model that is worse on some figures?",
                          f"On the held-out patients the new model is worse than the current one on "
                          f"{len(verdict.worse)} of {len(verdict.figures)} figures (current -> new):\n{lines}{small}\n\n"
                          "Use the new model anyway? Tools → Models switches back in one click.",
                          QMessageBox.StandardButton.NoButton, self)
        anyway = box.addButton("Use new model anyway", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep current model", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def chosen(button) -> None:
            self.confirm_box = None
            if button is anyway:
                self.use_new_model(confirmed=True)
            elif button is keep:
                self.keep_current_model()

        box.buttonClicked.connect(chosen)
        box.show()
        self.confirm_box = box

    def keep_current_model(self) -> None:
        try:
            reject(self.job)
        except Exception as exc:  # noqa: BLE001
            self.run_state.setText(f"{describe(exc)}")
            return
        self.use_button.setEnabled(False)
        self.keep_button.setEnabled(False)
        self.run_state.setText("Kept the current model; the new one was not added.")
        self._set_status("")

    # ------------------------------------------------------------------ window

    def live_job(self) -> Job | None:
        """The job this dialog follows while its child is training or gating."""
        if self.job is not None and self.job.state().get("state") in LIVE_STATES and self.job.is_alive():
            return self.job
        return None

    def stop_following(self) -> None:
        """The app is quitting: stop polling and every background task of the dialog (the run itself is decided
        by the main window: paused or left in the background)."""
        self._timer.stop()
        self._estimate_timer.stop()
        for worker in (self._summary_worker, self._estimate_worker, self._holdout_worker):
            if worker is not None:
                worker.cancel()

    def closeEvent(self, event) -> None:
        # a run goes on being followed while the window is closed: the main window's status bar shows it
        if self._ended:
            self._timer.stop()
        if self._summary_worker is not None:
            self._summary_worker.cancel()
        super().closeEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.pages.currentIndex() == 0:
            self.refresh_current_model()
        if self.job is not None and not self._ended:
            self._timer.start()
