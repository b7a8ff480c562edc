"""Keys typed into a text field, a combo box or a spin box go there, not to the viewer's one-key shortcuts.

The viewer's actions live on the window (so they work wherever the focus is):
N, P, Space, the digits, PgUp/PgDn, Esc... Qt asks the focused widget first
with a ShortcutOverride event; line edits already claim printable keys, but a
combo box lets "4" become "Preset 4" and Space become "Next patient", and a
text box lets PgDn go to the next patient. This filter claims every key
without Ctrl, Alt or Meta for such widgets (function keys excepted: F1, F2
stay the app's), so typing is never taken for a command.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit

TYPING_WIDGETS = (QLineEdit, QPlainTextEdit, QTextEdit, QComboBox, QAbstractSpinBox)
COMMAND_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier


def is_typing(widget: QObject, key: int, modifiers: Qt.KeyboardModifier) -> bool:
    """True when this key, pressed in this widget, is typing rather than a command."""
    if not isinstance(widget, TYPING_WIDGETS):
        return False
    if isinstance(widget, (QPlainTextEdit, QTextEdit)) and widget.isReadOnly():
        return False  # a log pane: the viewer's keys still work
    if modifiers & COMMAND_MODIFIERS:
        return False
    return not Qt.Key.Key_F1 <= key <= Qt.Key.Key_F35


class TypingGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and is_typing(watched, event.key(), event.modifiers()):
            event.accept()  # the widget takes the key; no shortcut fires
            return True
        return False
