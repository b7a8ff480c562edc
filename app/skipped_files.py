"""The "Skipped files" dock: every file the index could not use, with the reason, and a count in its title."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from model.study_index import Skipped


class SkippedFilesDock(QDockWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Skipped files (0)", parent)
        self.setObjectName("skippedFilesDock")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 420)
        self.setWidget(self.table)
        self.entries: list[Skipped] = []

    def set_skipped(self, skipped: list[Skipped], root: str | None = None) -> None:
        self.entries = list(skipped)
        self.table.setRowCount(len(skipped))
        for row, entry in enumerate(skipped):
            shown = entry.path
            if root:
                try:
                    shown = os.path.relpath(entry.path, root) if os.path.isabs(entry.path) else entry.path
                except ValueError:  # another drive on Windows
                    shown = entry.path
            path_item = QTableWidgetItem(shown)
            path_item.setToolTip(entry.path)
            reason_item = QTableWidgetItem(entry.reason)
            reason_item.setToolTip(entry.reason)
            self.table.setItem(row, 0, path_item)
            self.table.setItem(row, 1, reason_item)
        self.setWindowTitle(f"Skipped files ({len(skipped)})")

    @property
    def count(self) -> int:
        return len(self.entries)
