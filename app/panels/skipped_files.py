"""The "Skipped files" dock: every file the index could not use, with the reason, and a count in its title."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from model.data.study_index import Skipped


def shown_path(path: str, root: str | None) -> str:
    """The file as the reader finds it: relative to the opened folder, or its name when the file itself was opened."""
    if not root or not os.path.isabs(path) or os.path.normpath(path) == os.path.normpath(root):
        return os.path.basename(path) or path if root else path
    try:
        shown = os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return path
    return path if shown.startswith(os.pardir) else shown


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
            shown = shown_path(entry.path, root)
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
