"""Reading → Statistics: the site's reading figures (model.reading.stats) as the table `bcir reads stats` prints and
its plots."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from PySide6.QtGui import QFont, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QPlainTextEdit, QScrollArea, QVBoxLayout, QWidget

from model.errors import ReadRefused, ReadStoreError
from model.reading.stats import format_stats, plot_stats, reading_stats
from model.reading.store import ReadStore


class ReadingStatsDialog(QDialog):
    """``with_truth``: also the figures against the known outcome; never in reading mode, where they would tell a
    reader which of their cases had cancer (``bcir reads stats`` gives them to the site)."""

    def __init__(self, store: ReadStore, parent: QWidget | None = None, *, with_truth: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reading statistics" + ("" if with_truth else " (the known outcomes are not shown in "
                                                                          "reading mode)"))
        self.table = QPlainTextEdit()
        self.table.setReadOnly(True)
        self.table.setFont(QFont("monospace"))
        self.table.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.plot = QLabel()
        scroll = QScrollArea()
        scroll.setWidget(self.plot)
        scroll.setWidgetResizable(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(scroll, 1)
        self.resize(1100, 900)
        try:
            stats = reading_stats(store)
        except (ReadRefused, ReadStoreError) as exc:
            self.table.setPlainText(str(exc))
            return
        if not with_truth:
            stats = dataclasses.replace(stats, truth=None)
        self.table.setPlainText(format_stats(stats, truth_withheld=not with_truth))
        with tempfile.TemporaryDirectory(prefix="bcir-stats-") as tmp:
            path = plot_stats(stats, Path(tmp) / "stats.png")
            self.plot.setPixmap(QPixmap(str(path)))


__all__ = ["ReadingStatsDialog"]
