"""The shortcuts sheet (F1): every menu action with its keys, read from the menus themselves."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QMenuBar, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

MOUSE_ROWS = [
    ("Mouse", "Window / level", "right-drag: left/right = width, up/down = center"),
    ("Mouse", "Pan", "left-drag"),
    ("Mouse", "Zoom", "wheel (all panes follow)"),
    ("Mouse", "ROI (in ROI mode, R)", "left click: run one 1024 tile centred there"),
    ("Mouse", "Go to a finding", "click its row in Findings: the panes centre on it"),
]


def shortcut_rows(menubar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action in the menu bar, submenus included."""
    rows = []

    def keys_of(action) -> str:
        return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())

    def walk(menu, title: str) -> None:
        for action in menu.actions():
            if action.isSeparator():
                continue
            sub = action.menu()
            if sub is not None:
                name = action.text().replace("&", "")
                items = [a for a in sub.actions() if not a.isSeparator()]
                if len(items) > 3 and all(len(keys_of(a)) == 1 for a in items):  # a numbered family: one row
                    rows.append((title, f"{name} 1–{len(items)}", f"{keys_of(items[0])} … {keys_of(items[-1])}"))
                else:
                    walk(sub, f"{title} › {name}")
                continue
            rows.append((title, action.text().replace("&", ""), keys_of(action)))

    for action in menubar.actions():
        if action.menu() is not None:
            walk(action.menu(), action.text().replace("&", ""))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, menubar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = shortcut_rows(menubar) + MOUSE_ROWS
        self.table = QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(self.rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setWordWrap(True)  # on a narrow screen a long description wraps instead of being cut
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        # wide enough for every column as its contents need, so no key is cut off (within the screen)
        self._wanted = [max(self.table.sizeHintForColumn(c), self.table.horizontalHeader().sectionSizeHint(c))
                        for c in range(self.table.columnCount())]
        frame = self.table.verticalScrollBar().sizeHint().width() + 2 * self.table.frameWidth()
        margins = layout.contentsMargins()
        width = sum(self._wanted) + frame + margins.left() + margins.right() + 4
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        if screen is not None:
            width = min(width, screen.width() - 40)
        self.resize(max(620, width), 560)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Each column as wide as its contents; when the dialog is narrower, the two text columns share what is
        left and their rows wrap."""
        room = self.table.viewport().width()
        menu, action, keys = self._wanted
        if menu + action + keys > room:
            rest = max(room - menu, 2 * 60)
            action = max(60, int(rest * action / (action + keys)))
            keys = max(60, rest - action)
        self.table.setColumnWidth(0, menu)
        self.table.setColumnWidth(1, action)
        self.table.setColumnWidth(2, keys)
        self.table.resizeRowsToContents()

    def keys_fit(self) -> bool:
        """Every cell's text is shown whole, wrapped if need be, and nothing lies past the right edge."""
        metrics = self.table.fontMetrics()
        flags = int(Qt.TextFlag.TextWordWrap)
        for c in range(self.table.columnCount()):
            for r in range(self.table.rowCount()):
                text = self.table.item(r, c).text()
                room = QRect(0, 0, self.table.columnWidth(c) - 6, 10_000)
                if metrics.boundingRect(room, flags, text).height() > self.table.rowHeight(r):
                    return False
        return self.table.horizontalScrollBar().maximum() == 0
