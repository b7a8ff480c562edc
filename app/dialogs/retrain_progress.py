"""The Retrain window's run page: progress, the loss and Dice curves by epoch, the child's log, the state line."""

from __future__ import annotations

import math
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget

from model.jobs.estimate import eta_text
from model.jobs.verdict import GATE_DICE_PROTOCOL, TRAINING_DICE_PROTOCOL

LOG_TAIL_BYTES = 64_000  # the log pane keeps the end of a long log


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


def _curve(plot: pg.PlotWidget, color: str):
    return plot.plot([], [], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5, symbolBrush=color)


class RunView(QWidget):
    """A run as its events and log tell it; ``gate`` sits under the curves, ``buttons`` beside the state line."""

    def __init__(self, gate: QWidget, buttons: list[QPushButton], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.words = ""  # the run in a few words, for the main window's status bar
        self._log_offset = 0
        self._history: dict[str, list[tuple[int, float]]] = {"train_loss": [], "val_loss": [], "val_dice": []}
        self._part: str | None = None  # a two-pass run's part under way: its curves are shown
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
        self.train_curve = _curve(self.loss_plot, "#4da3ff")
        self.val_curve = _curve(self.loss_plot, "#ff9f40")
        self.dice_plot = pg.PlotWidget(axisItems={"bottom": EpochAxis("bottom")})
        self.dice_plot.setLabel("bottom", "epoch")
        self.dice_plot.setLabel("left", "validation Dice (ROI tiles)")
        self.dice_plot.setTitle("<span style='color:#ffff40'>━ validation Dice, training protocol: ROI tiles</span>",
                                size="9pt")
        self.dice_plot.setToolTip(f"Validation Dice on the curve: {TRAINING_DICE_PROTOCOL}.\nThe safety gate's Dice: "
                                  f"{GATE_DICE_PROTOCOL}.\nThe two measure different things and differ.")
        self.dice_plot.setYRange(0, 1)
        self.dice_plot.showGrid(x=True, y=True, alpha=0.25)
        self.dice_curve = _curve(self.dice_plot, "#ffff40")
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

        row = QHBoxLayout()
        row.addWidget(self.run_state, 1)
        for button in buttons:
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.run_title)
        layout.addWidget(self.progress)
        layout.addLayout(plots, 2)
        layout.addWidget(gate)
        layout.addWidget(self.log_view, 1)
        layout.addLayout(row)
        self.log_view.setMinimumHeight(90)

    def begin(self, title: str) -> None:
        """A run followed from its first event: empty curves, log and bar (not the last run's "done")."""
        self._log_offset = 0
        self.words = "starting"
        self._part = None  # a two-pass run's part under way: its curves are shown
        for values in self._history.values():
            values.clear()
        self.log_view.clear()
        self.run_title.setText(title)
        self.run_state.setText("starting…")
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._update_curves()

    def on_event(self, event: dict) -> None:
        kind = event.get("kind")
        part = event.get("part")  # a two-pass run: "coarse", then "fine"
        if part and part != self._part:  # the curves follow the part under way
            self._part = part
            for values in self._history.values():
                values.clear()
            self._update_curves()
        where = f"{part} part · " if part else ""
        if kind == "prepare":
            done, total = event.get("batch", 0), event.get("batches", 0)
            self.run_state.setText(f"preparing: {event.get('message', '')}" + (f" {done}/{total}" if total else ""))
            self.words = "preparing the images"
        elif kind == "batch":
            epoch, epochs = event.get("epoch", 1), event.get("epochs", 1) or 1
            batch, batches = event.get("batch", 0), event.get("batches", 1) or 1
            value = int(1000 * ((epoch - 1) + batch / batches) / epochs)
            self.progress.setValue(value)
            self.progress.setFormat(f"{where}epoch {epoch}/{epochs} · batch {batch}/{batches} · %p%")
            loss = event.get("loss")
            eta = f" · ETA {eta_text(event.get('eta_s'))}" if event.get("eta_s") else ""
            self.run_state.setText(f"training: loss {loss:.4f}{eta}" if loss is not None else "training…")
            self.words = f"{where}epoch {epoch}/{epochs}, {value // 10}%{eta}"
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
            self.words = "safety gate"
        elif kind == "failed":
            self.run_state.setText(f"failed: {event.get('message', '')}")

    def _update_curves(self) -> None:
        for curve, key in ((self.train_curve, "train_loss"), (self.val_curve, "val_loss"), (self.dice_curve, "val_dice")):
            points = self._history[key]
            curve.setData([p[0] for p in points], [p[1] for p in points])

    def curve_points(self, key: str) -> list[tuple[int, float]]:
        return list(self._history[key])

    def tail_log(self, path: Path) -> None:
        """Append the log's complete lines written since the last call (at most its last LOG_TAIL_BYTES)."""
        try:
            with open(path, "rb") as f:
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

    def ended(self, kind: str) -> None:
        """The bar at the run's end: full when done, the state beside the fraction when paused or interrupted."""
        if kind == "done":
            self.progress.setValue(1000)
            self.progress.setFormat("done")
        elif kind in ("paused", "interrupted"):
            self.progress.setFormat(f"{kind} · %p%")
