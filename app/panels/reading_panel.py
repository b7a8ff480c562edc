"""The Reading dock: the reader's worklists by role, the read of the case on screen (per breast: outcome, score,
density; findings with their marks), and, once the reader's own read is in, the other reads and the AI. It only
shows what the reading session (model.reading.session) holds and passes the reader's input on."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDockWidget, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
    QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget,
)

from model.reading.reads import Read
from model.reading.vocab import ABNORMALITIES, DENSITIES, OUTCOMES, ROLES, SCALES, SIDES, VIEW_NAMES

CASE_ROLE = Qt.ItemDataRole.UserRole
OUTCOME_WORDS = {"routine": "Routine recall (normal)", "assessment": "Recall for assessment",
                 "technical": "Technical recall", "clinical": "Clinical recall"}
ROLE_WORDS = {"first": "First reads", "second": "Second reads", "arbitration": "To arbitrate", "done": "Done"}
SIDE_WORDS = {"L": "Left breast", "R": "Right breast"}


def finding_text(finding) -> str:
    """'ill-defined mass at 3 o'clock, anterior third, 42 mm from the nipple, 12 mm'"""
    where = [f"at {finding.clock_hour} o'clock" if finding.clock_hour else "",
             f"{finding.depth} third" if finding.depth else "",
             f"{finding.nipple_distance_mm:.0f} mm from the nipple" if finding.nipple_distance_mm is not None else "",
             f"{finding.size_mm:.0f} mm" if finding.size_mm is not None else ""]
    return " ".join([finding.abnormality, ", ".join(w for w in where if w)]).strip()


def read_text(read: Read, names: dict[str, str]) -> str:
    """One reader's read in two lines: per breast, outcome, score and findings."""
    lines = [f"<b>{names.get(read.reader, read.reader)} ({read.reader})</b>"]
    for breast in read.breasts:
        findings = ", ".join(finding_text(f) for f in breast.findings)
        lines.append(f"{SIDE_WORDS[breast.side]}: {OUTCOME_WORDS[breast.outcome]}, score {breast.score}"
                     + (f"; {findings}" if findings else ""))
    return "<br>".join(lines)


class BreastForm(QGroupBox):
    """Outcome, score and density of one breast, and the view to retake and why for a technical recall."""

    changed = Signal(str, dict)  # side, the values the reader set

    def __init__(self, side: str, parent: QWidget | None = None) -> None:
        super().__init__(SIDE_WORDS[side], parent)
        self.side = side
        self.outcome = QComboBox()
        for outcome in OUTCOMES:
            self.outcome.addItem(OUTCOME_WORDS[outcome], outcome)
        self.score = QComboBox()
        self.density = QComboBox()
        self.density.addItem("—", None)
        for density in DENSITIES:
            self.density.addItem(density, density)
        self.technical_view = QComboBox()
        for view in VIEW_NAMES:
            if view.startswith(side):
                self.technical_view.addItem(view, view)
        self.technical_reason = QLineEdit()
        self.technical_reason.setPlaceholderText("why the view is retaken")
        form = QFormLayout(self)
        form.addRow("Outcome", self.outcome)
        form.addRow("Score", self.score)
        form.addRow("Density", self.density)
        form.addRow("Retake", self.technical_view)
        form.addRow("Reason", self.technical_reason)
        for box in (self.outcome, self.score, self.density, self.technical_view):
            box.activated.connect(lambda _i: self._emit())
        self.technical_reason.editingFinished.connect(self._emit)

    def set_scale(self, scale: str) -> None:
        self.score.clear()
        self.score.addItem("—", None)
        for score in SCALES[scale]:
            self.score.addItem(score, score)

    def show_values(self, values: dict) -> None:
        for box, key in ((self.outcome, "outcome"), (self.score, "score"), (self.density, "density")):
            box.setCurrentIndex(max(0, box.findData(values.get(key))))
        technical = values.get("outcome") == "technical"
        self.technical_view.setEnabled(technical)
        self.technical_reason.setEnabled(technical)
        if values.get("technical_view"):
            self.technical_view.setCurrentIndex(max(0, self.technical_view.findData(values["technical_view"])))
        self.technical_reason.setText(values.get("technical_reason") or "")

    def values(self) -> dict:
        technical = self.outcome.currentData() == "technical"
        return {"outcome": self.outcome.currentData(), "score": self.score.currentData(),
                "density": self.density.currentData(),
                "technical_view": self.technical_view.currentData() if technical else None,
                "technical_reason": (self.technical_reason.text().strip() or None) if technical else None}

    def _emit(self) -> None:
        values = self.values()
        self.technical_view.setEnabled(values["outcome"] == "technical")
        self.technical_reason.setEnabled(values["outcome"] == "technical")
        self.changed.emit(self.side, values)


class ReadingDock(QDockWidget):
    """Signals carry the reader's input; the controller answers with :meth:`show_case` and friends."""

    caseChosen = Signal(str)
    breastChanged = Signal(str, dict)
    findingAdded = Signal(str, str)  # side, abnormality
    markRequested = Signal(int)  # the finding whose next mark the reader places with a click on an image
    commitRequested = Signal()
    normalRequested = Signal()
    parkRequested = Signal()
    changeRequested = Signal()
    arbitrationRequested = Signal(dict, str)  # outcome per side, reason
    aiRequested = Signal()  # the site shows the AI on request, and the reader asks

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Reading", parent)
        self.setObjectName("readingDock")
        self.header = QLabel("Not reading")
        self.header.setWordWrap(True)
        self.tabs = QTabWidget()
        self.lists: dict[str, QListWidget] = {}
        for role in ROLES:
            widget = QListWidget()
            widget.itemActivated.connect(lambda item: self.caseChosen.emit(item.data(CASE_ROLE)))
            widget.itemClicked.connect(lambda item: self.caseChosen.emit(item.data(CASE_ROLE)))
            self.lists[role] = widget
            self.tabs.addTab(widget, ROLE_WORDS[role])
        self.breasts = {side: BreastForm(side) for side in SIDES}
        for form in self.breasts.values():
            form.changed.connect(self.breastChanged)
        self.finding_type = QComboBox()
        self.finding_type.addItems(list(ABNORMALITIES))
        self.finding_side = QComboBox()
        for side in SIDES:
            self.finding_side.addItem(SIDE_WORDS[side], side)
        self.add_finding = QPushButton("Add finding")
        self.findings = QListWidget()
        self.findings.setToolTip("Select a finding, then Mark and click the image where it is (once per view)")
        self.mark = QPushButton("Mark on image")
        self.commit = QPushButton("Commit read (Ctrl+Return)")
        self.normal = QPushButton("Normal both, next case (F9)")
        self.park = QPushButton("Park (Ctrl+Shift+P)")
        self.change = QPushButton("Change my read")
        self.show_ai = QPushButton("Show the AI (Ctrl+Shift+I; your read records it)")
        self.show_ai.hide()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.revealed = QLabel("")
        self.revealed.setWordWrap(True)
        self.revealed.setTextFormat(Qt.TextFormat.RichText)
        self.final = {side: QComboBox() for side in SIDES}
        for box in self.final.values():
            for outcome in OUTCOMES:
                box.addItem(OUTCOME_WORDS[outcome], outcome)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("why (recorded with the decision)")
        self.decide = QPushButton("Record the final outcome")
        self.arbitration = QGroupBox("Arbitration: final outcome per breast")
        form = QFormLayout(self.arbitration)
        for side in SIDES:
            form.addRow(SIDE_WORDS[side], self.final[side])
        form.addRow("Reason", self.reason)
        form.addRow(self.decide)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.tabs, 1)
        self.form = QWidget()
        form_layout = QVBoxLayout(self.form)
        form_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        for side in ("R", "L"):  # as the images hang: the right breast on the viewer's left
            row.addWidget(self.breasts[side])
        form_layout.addLayout(row)
        finding_row = QHBoxLayout()
        finding_row.addWidget(self.finding_type, 2)
        finding_row.addWidget(self.finding_side, 1)
        finding_row.addWidget(self.add_finding)
        form_layout.addLayout(finding_row)
        form_layout.addWidget(self.findings, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.mark)
        buttons.addWidget(self.park)
        form_layout.addLayout(buttons)
        commit_row = QHBoxLayout()
        commit_row.addWidget(self.normal)
        commit_row.addWidget(self.commit)
        form_layout.addLayout(commit_row)
        layout.addWidget(self.form, 3)
        layout.addWidget(self.show_ai)
        layout.addWidget(self.change)
        layout.addWidget(self.revealed)
        layout.addWidget(self.arbitration)
        layout.addWidget(self.message)
        layout.addStretch(0)
        self.tabs.setMaximumHeight(240)  # the worklists scroll; the read and the decision keep their room
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 8)

        self.add_finding.clicked.connect(
            lambda: self.findingAdded.emit(self.finding_side.currentData(), self.finding_type.currentText()))
        self.mark.clicked.connect(lambda: self.markRequested.emit(self.findings.currentRow()))
        self.commit.clicked.connect(self.commitRequested)
        self.normal.clicked.connect(self.normalRequested)
        self.park.clicked.connect(self.parkRequested)
        self.change.clicked.connect(self.changeRequested)
        self.show_ai.clicked.connect(self.aiRequested)
        self.decide.clicked.connect(lambda: self.arbitrationRequested.emit(
            {side: box.currentData() for side, box in self.final.items()}, self.reason.text().strip()))
        self.show_nothing()

    # -- what the controller shows -----------------------------------------------------------------------------

    def set_scale(self, scale: str) -> None:
        for form in self.breasts.values():
            form.set_scale(scale)

    def show_worklists(self, lists: dict) -> None:
        """The reader's worklists (model.reading.store.Worklist by role): counts in the tabs, oldest first."""
        for n, role in enumerate(ROLES):
            widget = self.lists[role]
            current = widget.currentItem().data(CASE_ROLE) if widget.currentItem() else None
            widget.clear()
            for item in lists[role].items:
                row = QListWidgetItem(f"{item.case_id}   waiting {item.waited}")
                row.setData(CASE_ROLE, item.case_id)
                row.setToolTip(f"{item.case_id}: {item.state} since {item.waiting_since[:16].replace('T', ' ')} UTC")
                widget.addItem(row)
                if item.case_id == current:
                    widget.setCurrentItem(row)
            self.tabs.setTabText(n, f"{ROLE_WORDS[role]} ({lists[role].count})")

    def show_nothing(self, header: str = "Not reading") -> None:
        self.header.setText(header)
        self.form.setEnabled(False)
        self.form.hide()
        self.change.hide()
        self.arbitration.hide()
        self.revealed.setText("")
        self.findings.clear()

    def show_draft(self, header: str, breasts: dict[str, dict], findings: list[str]) -> None:
        """The read being written."""
        self.header.setText(header)
        self.form.show()
        self.form.setEnabled(True)
        self.change.hide()
        self.arbitration.hide()
        self.revealed.setText("")  # the other reads and the AI only once this read is in
        for side, values in breasts.items():
            self.breasts[side].show_values(values)
        row = self.findings.currentRow()
        self.findings.clear()
        self.findings.addItems(findings)
        if self.findings.count():
            self.findings.setCurrentRow(min(max(row, 0), self.findings.count() - 1) if row >= 0 else self.findings.count() - 1)

    def show_committed(self, header: str, revealed: str, *, can_change: bool) -> None:
        """The reader's read is in: the form is closed, the other reads (and the AI, where allowed) are shown."""
        self.header.setText(header)
        self.form.show()
        self.form.setEnabled(False)
        self.change.setVisible(can_change)
        self.arbitration.hide()
        self.revealed.setText(revealed)

    def show_arbitration(self, header: str, revealed: str) -> None:
        self.header.setText(header)
        self.form.setEnabled(False)
        self.form.hide()  # the two reads and the decision, nothing else
        self.change.hide()
        self.revealed.setText(revealed)
        self.reason.clear()
        self.arbitration.show()

    def say(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet("color: #ff7070;" if error else "")
        self.message.setText(text)


__all__ = ["ReadingDock", "finding_text", "read_text"]
