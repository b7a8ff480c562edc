"""The Retrain window's options form: the widgets bound to RetrainOptions, the start point and the held-out choice."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from model.train.config import TrainConfig
from model.train.two_pass import COARSE_SPACING_MM, COARSE_TILE, FINE_SPACING_MM, FINE_TILE

from app.dialogs.retrain_options import RetrainOptions, papers_options
from app.errors import describe


def row(*widgets) -> QWidget:
    """Widgets side by side, left-aligned, as one form field."""
    box = QHBoxLayout()
    box.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        box.addWidget(w)
    box.addStretch(1)
    return wrap(box)


def wrap(layout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget


def devices() -> list[str]:
    import torch

    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return found


def model_version(path: Path) -> str:
    from model.nn.weights import read_card

    try:
        return read_card(path).version
    except Exception:  # noqa: BLE001 - a label; the start checks the model properly
        return path.stem


class OptionsForm(QGroupBox):
    """The run's options, filled from the paper's settings; ``options()`` reads them back as one dataclass."""

    countsChanged = Signal()  # an option that changes what the run counts, not how long a step takes
    timingChanged = Signal()  # an option that changes how long a step takes: tile, resolution, device, views, start
    holdoutChanged = Signal()  # the locked hold-out folder was chosen or typed
    startPointRefused = Signal(str)  # the current model cannot be fine-tuned: why (the form falls back to scratch)

    def __init__(self, current_model: Path | None, parent: QWidget | None = None) -> None:
        super().__init__("2. Options (as last used)", parent)
        self.current_model = current_model
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
        self.passes = QComboBox()
        self.passes.addItem("one (the paper)", False)
        self.passes.addItem("two: search, then look closer", True)
        self.passes.setToolTip("two passes: a coarse network searches the whole breast at the working resolution "
                               "above, then a fine network looks closer on a tile at each candidate; both are "
                               "trained, one after the other, and accepted as one model")
        self.fine_spacing = QDoubleSpinBox()
        self.fine_spacing.setDecimals(3)
        self.fine_spacing.setRange(0.05, 2.0)
        self.fine_spacing.setSingleStep(0.05)
        self.fine_spacing.setSuffix(" mm")
        self.fine_spacing.setValue(FINE_SPACING_MM)
        self.fine_tile = QSpinBox()
        self.fine_tile.setRange(32, 2048)
        self.fine_tile.setSingleStep(32)
        self.fine_tile.setSuffix(" px")
        self.fine_tile.setValue(FINE_TILE)
        self.schedule = QComboBox()
        self.schedule.addItem("constant (the paper)", "constant")
        self.schedule.addItem("cosine decay", "cosine")
        self.schedule.setToolTip("cosine decay: from the learning rate above down to 0 over the epochs")
        self.hard_negatives = QSpinBox()
        self.hard_negatives.setRange(0, 100)
        self.hard_negatives.setSpecialValueText("none")
        self.hard_negatives.setSuffix(" per image")
        self.hard_negatives.setToolTip("fine-tune only: before training, the current model reads every training "
                                       "image and a lesion-free tile is added at each of its most confident false "
                                       "positives, up to this many per image")
        self.augment = QSpinBox()
        self.augment.setRange(1, 100)
        self.augment.setValue(paper.augment_factor)
        self.augment.setToolTip("virtual expansion per case by random affine warps (the paper: x40)")
        self.views = QComboBox()
        self.views.addItem("CC (the paper)", ("CC",))
        self.views.addItem("CC and MLO", ("CC", "MLO"))
        self.device = QComboBox()
        self.device.addItems(devices())
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
        self.two_pass_note = QLabel()  # fine-tuning a two-pass model: both parts, each at its own resolution
        self.two_pass_note.setWordWrap(True)
        self.two_pass_note.hide()
        self.split = QRadioButton("Patient-level 70/30 split of this folder")
        self.locked = QRadioButton("Locked hold-out folder:")
        split_group = QButtonGroup(self)
        for button in (self.split, self.locked):
            split_group.addButton(button)
        self.split.setChecked(True)
        self.holdout = QLineEdit()
        self.holdout.setPlaceholderText("a labelled folder never trained on")
        self.holdout.editingFinished.connect(self.holdoutChanged)
        holdout_browse = QPushButton("Browse…")
        holdout_browse.clicked.connect(self._ask_holdout)
        holdout_row = QHBoxLayout()
        holdout_row.addWidget(self.locked)
        holdout_row.addWidget(self.holdout, 1)
        holdout_row.addWidget(holdout_browse)

        self.defaults_button = QPushButton("Paper's defaults")
        self.defaults_button.setToolTip("set every option back to the paper's settings (a fine-tune keeps the "
                                        "current model's working resolution)")
        self.defaults_button.clicked.connect(self.reset)
        form = QFormLayout(self)
        form.addRow("Start from", row(self.fine_tune, self.scratch))
        form.addRow("Held-out patients", self.split)
        form.addRow("", wrap(holdout_row))
        form.addRow("Epochs (at most)", self.epochs)
        form.addRow("Batch size", self.batch)
        form.addRow("Learning rate", row(self.lr, self.schedule))
        form.addRow("Passes", self.passes)
        form.addRow("Working resolution", row(self.spacing, QLabel("tile"), self.tile))
        self.fine_label = QLabel("Fine pass")
        form.addRow(self.fine_label, row(self.fine_spacing, QLabel("tile"), self.fine_tile))
        form.addRow("", self.two_pass_note)
        form.addRow("Augmentation", self.augment)
        form.addRow("Hard negatives", self.hard_negatives)
        form.addRow("Views", self.views)
        form.addRow("Device", self.device)
        form.addRow("Time budget", self.minutes)
        form.addRow("", row(self.defaults_button))

        for spin in (self.epochs, self.batch, self.augment, self.minutes, self.lr, self.hard_negatives):
            spin.valueChanged.connect(lambda *_: self.countsChanged.emit())
        self.schedule.currentIndexChanged.connect(lambda *_: self.countsChanged.emit())
        for spin in (self.spacing, self.tile, self.fine_spacing, self.fine_tile):
            spin.valueChanged.connect(lambda *_: self.timingChanged.emit())
        self.passes.currentIndexChanged.connect(self._on_passes)
        self.views.currentIndexChanged.connect(lambda *_: self.timingChanged.emit())
        self.device.currentIndexChanged.connect(lambda *_: self.timingChanged.emit())
        self.fine_tune.toggled.connect(lambda *_: self.timingChanged.emit())
        self.locked.toggled.connect(lambda *_: self.countsChanged.emit())

    # ------------------------------------------------------------------ the start point

    def set_current_model(self, path: Path | None) -> None:
        """The model the viewer uses now: the one a fine-tune starts from."""
        self.current_model = path
        self.fine_tune.setEnabled(path is not None)
        self.fine_tune.setText(f"Fine-tune the current model ({model_version(path)})"
                               if path else "Fine-tune the current model (none loaded)")
        if path is None and self.fine_tune.isChecked():
            self.scratch.setChecked(True)
        self._on_start_point(self.fine_tune.isChecked())

    def _on_start_point(self, fine_tune: bool) -> None:
        """Fine-tuning keeps the current model's working resolution: the network learnt its scale."""
        if fine_tune and self.current_model is not None:
            from model.nn.weights import read_card

            try:
                card = read_card(self.current_model)
            except Exception as exc:  # noqa: BLE001 - the dialog says why and offers scratch instead
                self.startPointRefused.emit(f"The current model cannot be fine-tuned: {describe(exc)}")
                self.scratch.setChecked(True)
                return
            self.spacing.setValue(card.preprocess.working_spacing_mm)
            self.tile.setValue(card.tile_size)
        pair = self._show_two_pass(fine_tune)
        self.hard_negatives.setEnabled(fine_tune)  # they are the current model's false positives
        self.spacing.setEnabled(not fine_tune)
        self.tile.setEnabled(not fine_tune)
        self.passes.setEnabled(not fine_tune)  # a fine-tune keeps the current model's kind, shown by the note
        if fine_tune:
            self.passes.blockSignals(True)
            self.passes.setCurrentIndex(1 if pair else 0)
            self.passes.blockSignals(False)
        self._show_fine_pass()

    def _on_passes(self, *_) -> None:
        """Two passes from scratch: the coarse part searches at the coarse protocol's resolution (0.4 mm, 256 px),
        the fine part looks at the paper's (0.1 mm, 1024 px); both stay editable."""
        if self.passes.currentData() and not self.fine_tune.isChecked():
            self.spacing.setValue(COARSE_SPACING_MM)
            self.tile.setValue(COARSE_TILE)
        self._show_fine_pass()
        self.timingChanged.emit()

    def _show_fine_pass(self) -> None:
        """The fine pass's resolution is an option of a new two-pass model only (a fine-tune keeps the pair's)."""
        shown = bool(self.passes.currentData()) and not self.fine_tune.isChecked()
        for widget in (self.fine_label, self.fine_spacing.parentWidget()):
            widget.setVisible(shown)

    def _show_two_pass(self, fine_tune: bool) -> bool:
        """Say so when the model fine-tuned is a two-pass one (model.jobs.job.start_job then trains both parts);
        True when it is."""
        from model.train.two_pass import part_resolutions

        try:
            parts = part_resolutions(self.current_model) if fine_tune and self.current_model is not None else None
        except Exception:  # noqa: BLE001 - not a two-pass model (or its card is unreadable: the start says why)
            parts = None
        if parts:
            (cs, ct), (fs, ft) = parts["coarse"], parts["fine"]
            self.two_pass_note.setText(f"Two-pass model: both passes are fine-tuned, each at its own resolution "
                                       f"(coarse {cs:g} mm, tile {ct}; fine {fs:g} mm, tile {ft}).")
        self.two_pass_note.setVisible(bool(parts))
        return bool(parts)

    def _ask_holdout(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Locked hold-out folder", self.holdout.text())
        if folder:
            self.holdout.setText(folder)
            self.locked.setChecked(True)
            self.holdoutChanged.emit()

    # ------------------------------------------------------------------ the options, read and set

    def options(self) -> RetrainOptions:
        return RetrainOptions(
            max_epochs=self.epochs.value(), batch_size=self.batch.value(), lr=self.lr.value(),
            working_spacing_mm=self.spacing.value(), tile=self.tile.value(), augment_factor=self.augment.value(),
            views=tuple(self.views.currentData()), device=self.device.currentText(), max_minutes=self.minutes.value(),
            start="fine-tune" if self.fine_tune.isChecked() else "scratch",
            held_out="locked" if self.locked.isChecked() else "split", holdout=self.holdout.text().strip(),
            lr_schedule=self.schedule.currentData(), hard_negatives=self.hard_negatives.value(),
            two_pass=bool(self.passes.currentData()), fine_spacing_mm=self.fine_spacing.value(),
            fine_tile=self.fine_tile.value())

    def apply(self, options: dict) -> None:
        """Fill the form from saved options; a value that is missing or no longer valid keeps the form's."""
        spins = {"max_epochs": self.epochs, "batch_size": self.batch, "lr": self.lr, "working_spacing_mm": self.spacing,
                 "tile": self.tile, "augment_factor": self.augment, "max_minutes": self.minutes,
                 "hard_negatives": self.hard_negatives, "fine_spacing_mm": self.fine_spacing,
                 "fine_tile": self.fine_tile}
        for key, spin in spins.items():
            value = options.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and spin.minimum() <= value <= spin.maximum():
                spin.setValue(value)
        views = options.get("views")
        for i in range(self.views.count()):
            if isinstance(views, list) and list(self.views.itemData(i)) == views:
                self.views.setCurrentIndex(i)
        for i in range(self.schedule.count()):
            if options.get("lr_schedule") == self.schedule.itemData(i):
                self.schedule.setCurrentIndex(i)
        if isinstance(options.get("two_pass"), bool):  # before the resolution it would set: the saved one wins
            self.passes.blockSignals(True)
            self.passes.setCurrentIndex(1 if options["two_pass"] else 0)
            self.passes.blockSignals(False)
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
            self.holdoutChanged.emit()
        elif options.get("held_out") == "split":
            self.split.setChecked(True)
        self._on_start_point(self.fine_tune.isChecked())

    def reset(self) -> None:
        """The paper's settings (a fine-tune keeps the current model's working resolution)."""
        self.apply(papers_options())
