"""The shortcuts sheet (F1): every menu action with its keys, read from the menus themselves."""

from __future__ import annotations

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
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(620, 560)
