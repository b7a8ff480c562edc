"""The one place where errors reach the reader: a status-bar line and a non-modal message.

Workers and slots never show dialogs themselves; they hand an exception or a
message to :class:`ErrorReporter`. What the reader sees is always one line,
never a traceback (the traceback goes to the log for developers).
"""

from __future__ import annotations

import logging
import traceback

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMainWindow, QMessageBox

from model.errors import BcirError

log = logging.getLogger("bcir.app")

STATUS_TIMEOUT_MS = 15_000


def describe(exc: BaseException) -> str:
    """One line a reader can act on, for any exception."""
    if isinstance(exc, BcirError):
        text = str(exc)
    elif isinstance(exc, FileNotFoundError):
        text = str(exc) if not exc.filename else f"{exc.filename} does not exist"
    elif isinstance(exc, PermissionError):
        text = f"permission denied: {exc.filename or exc}"
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    elif isinstance(exc, OSError):
        text = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split()) or type(exc).__name__


class ErrorReporter(QObject):
    """Shows errors of the whole app: status bar plus one reusable non-modal message box."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self._window = window
        self._box: QMessageBox | None = None
        self.messages: list[str] = []  # everything shown this session, newest last (tests read it)

    def show(self, message: str, *, context: str = "") -> None:
        """The status bar, the log and a non-modal message box."""
        line = self.note(message, context=context)
        if self._box is None:
            self._box = QMessageBox(QMessageBox.Icon.Warning, "B-Cir Review", line, QMessageBox.StandardButton.Close, self._window)
            self._box.setModal(False)
            self._box.setWindowModality(Qt.WindowModality.NonModal)
        else:
            self._box.setText(line)
        self._box.show()

    def note(self, message: str, *, context: str = "") -> str:
        """A problem of the case on screen that the panels already show: the status bar and the log, no box.
        Returns the one line shown."""
        line = " ".join(f"{context}: {message}".split()) if context else " ".join(message.split())
        self.messages.append(line)
        log.warning("%s", message)  # the context may name a patient or a path: not in the log
        self._window.statusBar().showMessage(line, STATUS_TIMEOUT_MS)
        return line

    def show_exception(self, exc: BaseException, *, context: str = "") -> None:
        log.debug("%s", "".join(traceback.format_exception(exc)))
        self.show(describe(exc), context=context)

    def excepthook(self, exc_type, exc, tb) -> None:
        """For sys.excepthook: a bug in a slot becomes a one-line message, not a crash or a console dump."""
        log.error("unhandled exception", exc_info=(exc_type, exc, tb))
        self.show(describe(exc), context="internal error")
