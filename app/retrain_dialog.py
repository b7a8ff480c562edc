"""Tools → Retrain on folder: summary of a labelled folder, options, a training run in a child process, the safety gate.

1. **Folder**: the dialog indexes the folder in the background and shows what
   it holds before anything runs (layout, patients, images, lesions,
   benign/malignant, and each problem with its reason).
2. **Options**: the paper's defaults (Adam 2e-4, batch 64, up to 200 epochs with
   early stop, 0.1 mm and 1024 tiles); fine-tune the current model (its
   working resolution is kept) or start from scratch; the patient-level 70/30
   split or a locked hold-out folder.
3. **Run**: ``model.retrain_job`` trains in a child process, so a crash cannot
   take the viewer down and the reader goes on reading. The dialog follows its
   event file: epoch, batch, ETA, loss and validation Dice curves, the log.
   Cancel stops after the current batch and leaves no model.
4. **Safety gate**: the current and the new model on the same held-out
   patients, in one table. Nothing switches by itself: "Use new model" adds it
   to the registry and makes it active; "Keep current model" leaves all as is.
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

from model.dataset_summary import FolderSummary, summarize_folder
from model.retrain_job import GATE_METRICS, Job, JobSpec, accept, eta_text, reject, start_job
from model.train import TrainConfig

from app.errors import describe
from app.workers import WorkerPool

log = logging.getLogger("bcir.app")

POLL_MS = 250
LOG_TAIL_BYTES = 64_000  # the log pane keeps the end of a long log
CANCEL_TIMEOUT_S = 30.0
LAYOUT_WORDS = {
    "cbis-ddsm": "CBIS-DDSM (TCIA tree with description CSVs)",
    "labelled-folder": "labelled folder (labels.csv)",
    "kaggle-jpeg": "Kaggle JPEG copy of CBIS-DDSM (dicom_info.csv)",
    "dicom-only": "DICOM files without labels",
    "empty": "no mammograms",
}
BETTER_COLOR = QColor(80, 190, 90)
WORSE_COLOR = QColor(230, 90, 70)


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


class RetrainDialog(QDialog):
    """Emits ``modelAccepted(entry)`` once the reader chose the new model (it is in the registry and active)."""

    modelAccepted = Signal(object)
    summaryReady = Signal(object)  # FolderSummary (tests wait on it)
    jobFinished = Signal(str)  # the job's final state: done, cancelled, failed, interrupted

    def __init__(self, workers: WorkerPool, current_model: Callable[[], Path | None], *, registry=None,
                 jobs_root: Path | None = None, parent: QWidget | None = None) -> None:
        """``current_model`` says which model the viewer uses now: the one to fine-tune and to compare with."""
        super().__init__(parent)
        self.setWindowTitle("Retrain on folder")
        self.setModal(False)
        self.workers = workers
        self._current_model_source = current_model
        self.current_model = self._read_current_model()
        self.registry = registry
        self.jobs_root = jobs_root
        self.summary: FolderSummary | None = None
        self.job: Job | None = None
        self.accepted_entry = None
        # TrainConfig fields set by code rather than by the form (a scripted site's settings, quick test runs)
        self.config_overrides: dict = {}
        self._summary_worker = None
        self._events_offset = 0
        self._log_offset = 0
        self._epochs = 0
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

    # ------------------------------------------------------------------ page 1: folder and options

    def _build_setup_page(self) -> QWidget:
        page = QWidget()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a CBIS-DDSM download, a labelled folder (labels.csv) or the Kaggle JPEG copy")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._ask_folder)
        self.folder.returnPressed.connect(lambda: self.set_folder(self.folder.text()))
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)

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
        holdout_browse = QPushButton("Browse…")
        holdout_browse.clicked.connect(self._ask_holdout)
        holdout_row = QHBoxLayout()
        holdout_row.addWidget(self.locked)
        holdout_row.addWidget(self.holdout, 1)
        holdout_row.addWidget(holdout_browse)

        options = QGroupBox("2. Options (the paper's defaults)")
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
        self.setup_message = QLabel()
        self.setup_message.setWordWrap(True)
        self.refresh_current_model()

        self.start_button = QPushButton("Start training")
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
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
        from model.weights import read_card

        try:
            return str(read_card(path).get("model_version", path.stem))
        except Exception:  # noqa: BLE001 - a label; the start checks the model properly
            return path.stem

    def show_setup(self) -> None:
        self.refresh_current_model()
        self.pages.setCurrentIndex(0)

    def _on_start_point(self, fine_tune: bool) -> None:
        """Fine-tuning keeps the current model's working resolution: the network learnt its scale."""
        if fine_tune and self.current_model is not None:
            from model.weights import read_card

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

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to train on", self.folder.text())
        if folder:
            self.set_folder(folder)

    def _ask_holdout(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Locked hold-out folder", self.holdout.text())
        if folder:
            self.holdout.setText(folder)
            self.locked.setChecked(True)

    def set_folder(self, folder: str | Path) -> None:
        """Count the folder in the background; the summary and the problems list fill when it is done."""
        folder = str(Path(folder).expanduser())
        self.folder.setText(folder)
        self.summary = None
        self.start_button.setEnabled(False)
        self.problems.clear()
        self.summary_label.setText(f"Reading {folder}…")
        self.summary_progress.setRange(0, 0)
        self.summary_progress.show()
        if self._summary_worker is not None:
            self._summary_worker.cancel()
        views = self.views.currentData()
        worker = self.workers.start(
            lambda report, should_stop: summarize_folder(folder, views=views, progress=report, should_stop=should_stop),
            name=f"summary {folder}",
            on_progress=lambda event: self._on_summary_progress(worker, event),
            on_result=lambda summary: self._on_summary(worker, summary),
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

    def _on_summary(self, worker, summary: FolderSummary) -> None:
        if worker is not self._summary_worker:
            return
        self._summary_worker = None
        self.summary_progress.hide()
        self.summary = summary
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

    def start(self) -> Job | None:
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
        try:
            job = start_job(self.spec(), self.jobs_root)
        except Exception as exc:  # noqa: BLE001 - one line in the dialog, the viewer stays up
            self.setup_message.setText(f"Could not start: {describe(exc)}")
            return None
        log.info("retrain job %s started", job.id)
        self.attach(job)
        return job

    # ------------------------------------------------------------------ page 2: the run and the gate

    def _build_run_page(self) -> QWidget:
        page = QWidget()
        self.run_title = QLabel()
        self.run_title.setWordWrap(True)
        self.run_title.setTextFormat(Qt.TextFormat.RichText)
        self.run_state = QLabel()
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
        self.dice_plot.setLabel("left", "validation Dice")
        self.dice_plot.setTitle("<span style='color:#ffff40'>━ validation Dice</span>", size="9pt")
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
        self.gate_table = QTableWidget(len(GATE_METRICS), 3)
        self.gate_table.setHorizontalHeaderLabels(["Current model", "New model", "Better"])
        self.gate_table.setVerticalHeaderLabels([label for _, label, _ in GATE_METRICS])
        self.gate_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.gate_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.gate_table.setFixedHeight(self.gate_table.verticalHeader().length() + self.gate_table.horizontalHeader().height() + 4)
        self.gate_notes = QLabel()
        self.gate_notes.setWordWrap(True)
        self.use_button = QPushButton("Use new model")
        self.keep_button = QPushButton("Keep current model")
        self.use_button.clicked.connect(self.use_new_model)
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
        self.new_button = QPushButton("Train again…")
        self.new_button.clicked.connect(self.show_setup)
        self.new_button.hide()
        close = QPushButton("Close (training goes on)")
        close.clicked.connect(self.close)
        self.close_button = close
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_state, 1)
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
        self._events_offset = self._log_offset = 0
        self._epochs = 0
        for values in self._history.values():
            values.clear()
        self.log_view.clear()
        self.gate_box.hide()
        self.use_button.setEnabled(True)
        self.keep_button.setEnabled(True)
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.new_button.hide()
        self.close_button.setText("Close (training goes on)")
        spec = job.spec()
        start = "fine-tuning the current model" if spec.fine_tune else "from scratch"
        held = f"locked hold-out folder {spec.holdout_root}" if spec.holdout_root else "70/30 patient split"
        self.run_title.setText(f"<b>Training on</b> {spec.root}<br>{start}; held out: {held}; job {job.id}")
        self.run_state.setText("starting…")
        self.progress.setValue(0)
        self.pages.setCurrentIndex(1)
        self._update_curves()
        self.poll()
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
        if state.get("state") in ("done", "cancelled", "failed"):
            self._finished(state)
        elif state.get("state") == "unknown" and not self.job.dir.is_dir():
            self._finished({"state": "failed", "message": f"the job folder {self.job.dir} is gone"})
        elif not self.job.is_alive() and state.get("pid"):
            self._finished({**state, "state": "interrupted",
                            "message": "the training process is gone (killed?); reopen the app to resume it"})

    def _on_event(self, event: dict) -> None:
        kind = event.get("kind")
        if kind == "prepare":
            done, total = event.get("batch", 0), event.get("batches", 0)
            self.run_state.setText(f"preparing: {event.get('message', '')}" + (f" {done}/{total}" if total else ""))
        elif kind == "epoch_start":
            self._epochs = event.get("epochs", 0)
        elif kind == "batch":
            epoch, epochs = event.get("epoch", 1), event.get("epochs", 1) or 1
            batch, batches = event.get("batch", 0), event.get("batches", 1) or 1
            self.progress.setValue(int(1000 * ((epoch - 1) + batch / batches) / epochs))
            self.progress.setFormat(f"epoch {epoch}/{epochs} · batch {batch}/{batches} · %p%")
            loss = event.get("loss")
            self.run_state.setText(f"training: loss {loss:.4f}" + (f" · ETA {eta_text(event.get('eta_s'))}" if event.get("eta_s") else "")
                                   if loss is not None else "training…")
        elif kind == "epoch_end":
            metrics = event.get("metrics") or {}
            epoch = event.get("epoch", 0)
            for key in self._history:
                if metrics.get(key) is not None:
                    self._history[key].append((epoch, float(metrics[key])))
            self._update_curves()
        elif kind in ("early_stop", "cancelled"):
            self.run_state.setText(event.get("message", kind))
        elif kind == "gate_progress":
            self.progress.setFormat(f"safety gate: {event.get('model')} model {event.get('done')}/{event.get('total')} images")
            total = event.get("total") or 1
            self.progress.setValue(int(1000 * event.get("done", 0) / total))
            self.run_state.setText("safety gate: evaluating the current and the new model…")
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
        events, self._events_offset = self.job.events(self._events_offset)  # what came with the end
        for event in events:
            self._on_event(event)
        self._tail_log()
        kind = state.get("state")
        self.cancel_button.hide()
        self.new_button.show()
        self.close_button.setText("Close")
        if kind == "done":
            self.progress.setValue(1000)
            self.progress.setFormat("done")
            self._show_gate()
        self.run_state.setText(f"{kind}: {state.get('message', '')}")
        decision = self.job.decision()
        if decision is not None:  # a job reopened after the reader chose
            self.run_state.setText(f"decided: {'the new model was put in use' if decision == 'accepted' else 'the current model was kept'}")
        self.jobFinished.emit(kind)

    def _show_gate(self) -> None:
        comparison = self.job.comparison() or {}
        rows = {r["model"]: r for r in comparison.get("rows", [])}
        current, new = rows.get("current"), rows.get("new")
        self.gate_table.setHorizontalHeaderLabels([
            f"Current: {current.get('version') or '?'}" if current and current.get("available") else "Current model",
            f"New: {new.get('version') or '?'}" if new and new.get("available") else "New model", "Better"])
        better = comparison.get("better") or {}
        for r, (key, _, _) in enumerate(GATE_METRICS):
            for c, row in enumerate((current, new)):
                self.gate_table.setItem(r, c, QTableWidgetItem(self._cell(row, key)))
            verdict = better.get(key)
            item = QTableWidgetItem({"new": "new", "current": "current", "tie": "tie"}.get(verdict, "—"))
            if verdict in ("new", "current"):
                item.setForeground(QBrush(BETTER_COLOR if verdict == "new" else WORSE_COLOR))
            self.gate_table.setItem(r, 2, item)
        self.gate_description.setText(f"Held out: {comparison.get('description', '?')}")
        notes = comparison.get("notes") or []
        self.gate_notes.setText("<br>".join(f"• {n}" for n in notes))
        decision = self.job.decision()
        self.use_button.setEnabled(decision is None and new is not None and new.get("available", False))
        self.keep_button.setEnabled(decision is None)
        self.gate_box.show()


    @staticmethod
    def _cell(row: dict | None, key: str) -> str:
        if not row or not row.get("available"):
            return "n/a" + (f" ({row.get('reason')})" if row and row.get("reason") else "")
        value = row.get(key)
        if value is None:
            return "n/a"
        text = f"{value:.3f}"
        ci = row.get("auc_ci") if key == "auc" else None
        if ci and None not in ci:
            text += f"  (95% CI {ci[0]:.2f}–{ci[1]:.2f})"
        return text

    def gate_cells(self) -> list[list[str]]:
        return [[self.gate_table.item(r, c).text() if self.gate_table.item(r, c) else "" for c in range(3)]
                for r in range(self.gate_table.rowCount())]

    # ------------------------------------------------------------------ the reader's choices

    def cancel(self) -> None:
        if self.job is None:
            return
        self.cancel_button.setEnabled(False)
        self.run_state.setText("stopping after the current batch…")
        job = self.job
        self.workers.start(lambda report, should_stop: job.cancel(timeout=CANCEL_TIMEOUT_S), name=f"cancel {job.id}",
                           on_error=lambda message: self.run_state.setText(f"cancel: {message}"))

    def use_new_model(self):
        try:
            entry = accept(self.job, self.registry)
        except Exception as exc:  # noqa: BLE001
            self.run_state.setText(f"Could not use the new model: {describe(exc)}")
            return None
        self.accepted_entry = entry
        self.use_button.setEnabled(False)
        self.keep_button.setEnabled(False)
        self.run_state.setText(f"Now using {entry.version}; Tools → Models lists every version and switches back.")
        self.modelAccepted.emit(entry)
        return entry

    def keep_current_model(self) -> None:
        try:
            reject(self.job)
        except Exception as exc:  # noqa: BLE001
            self.run_state.setText(f"{describe(exc)}")
            return
        self.use_button.setEnabled(False)
        self.keep_button.setEnabled(False)
        self.run_state.setText("Kept the current model; the new one was not added.")

    def closeEvent(self, event) -> None:
        self._timer.stop()
        if self._summary_worker is not None:
            self._summary_worker.cancel()
        super().closeEvent(event)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.pages.currentIndex() == 0:
            self.refresh_current_model()
        if self.job is not None and self.pages.currentIndex() == 1 and self.job.state().get("state") in ("running", "gating"):
            self._timer.start()
