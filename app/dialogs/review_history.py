"""Review → Review history: every review in the log, sortable, with CSV export."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.reviews.store import ReviewStore
from model.reviews.words import local_time, score_text, verdict_text

COLUMNS = ["#", "When", "Reader", "Patient", "Verdict", "BI-RADS", "AI shown", "Model", "Comment"]


class ReviewHistoryDialog(QDialog):
    def __init__(self, store: ReviewStore, export, parent: QWidget | None = None, *, reader: str | None = None) -> None:
        """``reader``: show only this reader's reviews (blinded reading keeps the readers independent)."""
        super().__init__(parent)
        self.setWindowTitle("Review history" + (f": {reader}'s reviews (blinded reading)" if reader is not None else ""))
        self.store = store
        reviews = store.all(reader=reader)  # reader "" (no name typed yet): none are this reader's
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by patient, reader, verdict or comment")
        self.search.setClearButtonEnabled(True)
        self.table = QTableWidget(len(reviews), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        for r, review in enumerate(reversed(reviews)):
            cells = [str(review.id), local_time(review.created), review.reader, review.patient_id, verdict_text(review),
                     review.birads, score_text(review), review.model_version, review.comment.replace("\n", " ")]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setData(Qt.ItemDataRole.DisplayRole, review.id)  # sorts as a number
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.count = QLabel(f"{len(reviews)} reviews in {store.path}")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        export_button = buttons.addButton("Export CSV…", QDialogButtonBox.ButtonRole.ActionRole)
        export_button.clicked.connect(export)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table)
        layout.addWidget(self.count)
        layout.addWidget(buttons)
        self.search.textChanged.connect(self.apply_filter)
        self.resize(960, 520)

    def apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        shown = 0
        for r in range(self.table.rowCount()):
            match = not needle or any(needle in (self.table.item(r, c).text().lower()) for c in range(self.table.columnCount()))
            self.table.setRowHidden(r, not match)
            shown += match
        self.count.setText(f"{shown} of {self.table.rowCount()} reviews in {self.store.path}")
