"""The Retrain window's safety gate: the current and the new model on the same held-out patients, in one table."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.jobs.verdict import GATE_DICE_PROTOCOL, GATE_METRICS, GateVerdict, judge

from app.dialogs.retrain_estimate import WARN_STYLE

BETTER_COLOR = QColor(80, 190, 90)
WORSE_COLOR = QColor(230, 90, 70)


class GateView(QGroupBox):
    """Each figure for both models with the held-out size behind it, "not measurable" where the set cannot give
    one (model.jobs.verdict.judge), and the reader's two choices."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Safety gate: current and new model on the same held-out patients", parent)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(len(GATE_METRICS), 4)
        self.table.setHorizontalHeaderLabels(["Current model", "New model", "Better", "Held out"])
        self.table.setVerticalHeaderLabels([label for _, label, _ in GATE_METRICS])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setFixedHeight(self.table.verticalHeader().length() + self.table.horizontalHeader().height() + 4)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.use_button = QPushButton("Use new model")
        self.keep_button = QPushButton("Keep current model")
        decide = QHBoxLayout()
        decide.addStretch(1)
        decide.addWidget(self.keep_button)
        decide.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.description)
        layout.addWidget(self.table)
        layout.addWidget(self.notes)
        layout.addLayout(decide)
        self.hide()

    def show_comparison(self, comparison: dict, decision: str | None) -> GateVerdict:
        """Fill the table from the job's comparison.json; the choices stay open until the reader has decided."""
        verdict = judge(comparison)
        rows = {r["model"]: r for r in comparison.get("rows", [])}
        current, new = rows.get("current"), rows.get("new")
        self.table.setHorizontalHeaderLabels([
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
                self.table.setItem(r, c, item)
            item = QTableWidgetItem({"new": "new", "current": "current", "tie": "tie"}.get(figure.verdict, "—"))
            if figure.verdict in ("new", "current"):
                item.setForeground(QBrush(BETTER_COLOR if figure.verdict == "new" else WORSE_COLOR))
            self.table.setItem(r, 2, item)
            self.table.setItem(r, 3, QTableWidgetItem(figure.held_out))
        text = [f"Held out: {comparison.get('description', '?')}.",
                f"Figures here: {comparison.get('protocol') or GATE_DICE_PROTOCOL}. The curve's validation Dice uses the "
                "training protocol (ROI tiles centred on the lesions), so it differs from the Dice here."]
        if verdict.warnings:
            text.append(f"<span style='{WARN_STYLE}'><b>Too few held-out cases to decide:</b> "
                        + "; ".join(verdict.warnings) + ".</span>")
        if verdict.worse:
            text.append(f"<span style='color:#e05050'>The new model is worse on {len(verdict.worse)} of "
                        f"{len(verdict.figures)} figures: {', '.join(f.label for f in verdict.worse)}.</span>")
        self.description.setText("<br>".join(text))
        notes = comparison.get("notes") or []
        self.notes.setText("<br>".join(f"• {n}" for n in notes))
        self.use_button.setEnabled(decision is None and new is not None and new.get("available", False))
        self.keep_button.setEnabled(decision is None)
        self.show()
        return verdict

    def set_open(self, open_: bool) -> None:
        """Both choices on (a new run) or off (the reader has chosen)."""
        self.use_button.setEnabled(open_)
        self.keep_button.setEnabled(open_)

    def cells(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() if self.table.item(r, c) else ""
                 for c in range(self.table.columnCount())] for r in range(self.table.rowCount())]
