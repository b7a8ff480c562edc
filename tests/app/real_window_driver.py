"""Run the real app and write what its panels show to a JSON file: ``python tests/app/real_window_driver.py STATE.json [main.py arguments]``.

For tests that drive the app from outside, in a real X server, with real key
events (tests/app/test_real_window.py), and for anyone who wants to see what a
running window shows without a screen reader. It starts the app through its
own entry point, ``app.main_window.run`` (what ``python main.py`` runs), with
nothing changed: it only creates the QApplication first, so that a timer can
read the window every 200 ms and write, when something changed, one JSON
object atomically (``model.fileio.atomic_write_json``): the case on screen,
the Findings and Review panels' texts, whether Agree is enabled, the AI
results drawn, whether the AI still runs (the case or the next one's
prefetch), the worklist and its scores, the focus, the X window id, and the text
of a modal dialog when one is open. A field that cannot be read says why
(``"error: ..."``) instead of stopping the writer.
"""

from __future__ import annotations

import html
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from model.fileio import atomic_write_json  # noqa: E402

PERIOD_MS = 200
_TAGS = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """A label's rich text as the reader reads it: line breaks kept, tags dropped."""
    return html.unescape(_TAGS.sub("", re.sub(r"<br\s*/?>", "\n", text))).strip()


def _field(read):
    try:
        return read()
    except Exception as exc:  # a renamed widget must show in the state, not stop the writer
        return f"error: {type(exc).__name__}: {exc}"


def window_state(app: QApplication, window) -> dict:
    viewer, findings, review = window.viewer, window.findings, window.review
    patient = viewer.patient_id
    tree = findings.tree
    modal = app.activeModalWidget()
    focus = app.focusWidget()
    geometry = window.frameGeometry()
    return {
        "platform": app.platformName(),
        "window": {
            "id": int(window.winId()),
            "visible": window.isVisible(),
            "active": window.isActiveWindow(),
            "geometry": [geometry.x(), geometry.y(), geometry.width(), geometry.height()],
        },
        "focus": f"{type(focus).__name__}:{focus.objectName()}" if focus is not None else None,
        "modal": _field(lambda: None if modal is None else {
            "title": modal.windowTitle(), "text": plain(getattr(modal, "text", lambda: "")() or "")}),
        "patient": patient,
        "worklist_current": _field(window.worklist.current_patient),
        "worklist_patients": _field(window.worklist.visible_patients),
        "worklist_scores": _field(lambda: {p: window.worklist.ai_score(p) for p in window.worklist.visible_patients()}),
        "ai_busy": _field(lambda: window.ai.busy),
        "cc_views": _field(lambda: len(viewer.cc_images()) if patient is not None else 0),
        "ai_drawn": _field(lambda: len(viewer.ai)),
        "findings": {
            "patient": _field(lambda: findings.patient_id),
            "summary": _field(lambda: plain(findings.summary.text())),
            "rows": _field(lambda: [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]),
            "lesion_rows": _field(lambda: len(findings.lesion_rows())),
        },
        "review": {
            "patient": _field(lambda: review.patient_id),
            "ai_line": _field(lambda: plain(review.ai_line.text())),
            "agree_enabled": _field(lambda: review.agree_button.isEnabled()),
        },
        "status_bar": _field(lambda: window.statusBar().currentMessage()),
        "reading": _field(lambda: reading_state(window)),
    }


def reading_state(window) -> dict:
    """Reading mode as the reader sees it, and any ground truth the window's widgets hold while in it."""
    from tests.app.qt_helpers import every_text, truth_shown

    control, dock = window.reading_control, window.reading
    return {
        "mode": control.mode_label.text(),
        "header": plain(dock.header.text()),
        "message": dock.message.text(),
        "tabs": [dock.tabs.tabText(i) for i in range(dock.tabs.count())],
        "ai_hidden": window.viewer.blinded,
        "truth_drawn": window.viewer.truth_shown,
        "truth_texts": truth_shown(every_text(window), window.index) if control.reading and window.index else [],
    }


class StateWriter:
    def __init__(self, app: QApplication, out: Path) -> None:
        self.app = app
        self.out = out
        self.last: dict | None = None
        self.timer = QTimer()
        self.timer.timeout.connect(self.write)
        self.timer.start(PERIOD_MS)

    def main_window(self):
        from app.main_window import MainWindow

        return next((w for w in self.app.topLevelWidgets() if isinstance(w, MainWindow)), None)

    def write(self) -> None:
        try:
            window = self.main_window()
            state = {"error": "no main window yet"} if window is None else window_state(self.app, window)
        except Exception as exc:  # never let the app's excepthook turn this into a dialog
            state = {"error": f"{type(exc).__name__}: {exc}"}
        if state == self.last:
            return
        self.last = state
        try:
            atomic_write_json(self.out, {**state, "pid": os.getpid(), "time": time.time()})
        except OSError as exc:
            print(f"real_window_driver: cannot write {self.out}: {exc}", file=sys.stderr)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    app = QApplication([sys.argv[0]])  # run() takes this one: QApplication.instance() or a new one
    writer = StateWriter(app, Path(argv[0]))
    from app.main_window import run

    try:
        return run(argv[1:])
    finally:
        writer.timer.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
