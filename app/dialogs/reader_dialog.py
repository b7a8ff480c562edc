"""Reading → Start reading: the reading database and who reads, chosen from the site's list (never typed)."""

from __future__ import annotations

import getpass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout,
    QWidget,
)

from model.errors import ReadStoreError
from model.reading.db import default_url, display_url
from model.reading.store import ReadStore

CODE_ROLE = Qt.ItemDataRole.UserRole


class ReaderDialog(QDialog):
    """Connects to the database the line names, lists its readers; accepted with one chosen. ``store`` and
    ``reader`` hold the result."""

    def __init__(self, url: str = "", last_reader: str = "", parent: QWidget | None = None, *,
                 login: str | None = None) -> None:
        super().__init__(parent)
        self.login = login or getpass.getuser()
        self.setWindowTitle("Start reading")
        self.store: ReadStore | None = None
        self.reader: str | None = None
        self.last_reader = last_reader
        self.url = QLineEdit(url or default_url())
        self.url.setToolTip("sqlite:///PATH on this workstation, or postgresql://USER@HOST:PORT/DBNAME for the "
                            "site's shared database")
        self.connect_button = QPushButton("Connect")
        self.readers = QListWidget()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Read as this reader")
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Reading database"))
        row.addWidget(self.url, 1)
        row.addWidget(self.connect_button)
        layout.addLayout(row)
        layout.addWidget(QLabel("Who reads (the site's list; `bcir readers add CODE NAME` adds one)"))
        layout.addWidget(self.readers, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.connect_button.clicked.connect(self.connect_store)
        self.url.returnPressed.connect(self.connect_store)
        self.readers.itemActivated.connect(lambda _item: self.accept())  # Return or a double click on a name
        self.readers.currentItemChanged.connect(lambda *_: self._refresh())
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.resize(560, 380)
        self.connect_store()

    def connect_store(self) -> bool:
        """Open the database the line names and list its readers; one line says why not."""
        if self.store is not None:
            self.store.close()
            self.store = None
        self.readers.clear()
        try:
            self.store = ReadStore(self.url.text().strip())
            readers = self.store.readers_for_login(self.login)
            tied = any(self.store.logins().values())
            everyone = len(self.store.readers())
        except ReadStoreError as exc:
            self.message.setText(str(exc))
            self.message.setStyleSheet("color: #ff7070;")
            self._refresh()
            return False
        for reader in readers:
            item = QListWidgetItem(f"{reader.name} ({reader.code})")
            item.setData(CODE_ROLE, reader.code)
            self.readers.addItem(item)
            if reader.code == self.last_reader:
                self.readers.setCurrentItem(item)
        if self.readers.currentItem() is None and self.readers.count():
            self.readers.setCurrentRow(0)
        if self.readers.count():
            self.readers.setFocus()  # the keys choose the name: arrows, then Return
        self.message.setStyleSheet("")
        if not everyone:
            text = "This site has no readers yet: add them with `bcir readers add CODE NAME`"
        elif tied and not readers:
            text = (f"No reader of this site is tied to your login ({self.login}): ask for `bcir readers add CODE "
                    f"NAME --login {self.login}`")
        elif tied:
            text = f"{display_url(self.store.url)}: the readers tied to your login ({self.login})"
        else:
            text = (f"{display_url(self.store.url)}: {everyone} readers; this site ties no reader to a login, so "
                    "choose your own name")
        self.message.setText(text)
        self._refresh()
        return True

    def choose(self, code: str) -> bool:
        for row in range(self.readers.count()):
            if self.readers.item(row).data(CODE_ROLE) == code:
                self.readers.setCurrentRow(row)
                return True
        return False

    def _refresh(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self.store is not None and self.readers.currentItem() is not None)

    def accept(self) -> None:
        item = self.readers.currentItem()
        if self.store is None or item is None:
            return
        self.reader = item.data(CODE_ROLE)
        super().accept()

    def reject(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        super().reject()


__all__ = ["ReaderDialog"]
