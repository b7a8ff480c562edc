"""Helpers shared by the GUI tests."""

from PySide6.QtWidgets import (
    QAbstractButton, QComboBox, QDockWidget, QLabel, QLineEdit, QListWidget, QTabWidget, QTreeWidget,
    QTreeWidgetItemIterator, QWidget,
)

from app.case_text import image_truth, patient_truth

TIMEOUT_MS = 60_000


def open_root(qtbot, window, root, timeout_ms: int = TIMEOUT_MS):
    """Open ``root`` in ``window`` and wait for its index; returns the index."""
    with qtbot.waitSignal(window.indexReady, timeout=timeout_ms) as blocker:
        window.open_path(root)
    return blocker.args[0]


def show_with_ai(qtbot, window, patient_id, timeout_ms: int = TIMEOUT_MS):
    """Select a patient and wait until its images are shown and the AI has answered for its CC views."""
    def this_patient(pid):
        return pid == patient_id

    with qtbot.waitSignals([window.viewer.caseShown, window.aiFinished], timeout=timeout_ms, order="none",
                           check_params_cbs=[this_patient, this_patient]):
        assert window.select_patient(patient_id)


def every_text(window) -> list[str]:
    """Every text and tooltip the window's widgets hold, shown or not (a hidden column is one click away)."""
    texts = [window.windowTitle(), window.statusBar().currentMessage()]
    for widget in window.findChildren(QWidget):
        texts.append(widget.toolTip())
        if isinstance(widget, (QLabel, QAbstractButton, QLineEdit)):
            texts.append(widget.text())
        if isinstance(widget, QDockWidget):
            texts.append(widget.windowTitle())
        if isinstance(widget, QComboBox):
            texts += [widget.itemText(i) for i in range(widget.count())]
        if isinstance(widget, QTabWidget):
            texts += [widget.tabText(i) for i in range(widget.count())]
        if isinstance(widget, QListWidget):
            for i in range(widget.count()):
                texts += [widget.item(i).text(), widget.item(i).toolTip()]
        if isinstance(widget, QTreeWidget):
            iterator = QTreeWidgetItemIterator(widget)
            while iterator.value():
                item = iterator.value()
                for column in range(widget.columnCount()):
                    texts += [item.text(column), item.toolTip(column)]
                iterator += 1
    return [t for t in texts if t]


def truth_shown(texts: list[str], index) -> list[str]:
    """The texts that give away the demo folder's ground truth: the pathologies as CBIS-DDSM writes them (anywhere in
    a text), an image's truth as the worklist and Findings word it, and a patient's one-word truth as a cell holds it
    (a cell that is exactly "benign" or "no lesion"; BI-RADS 2's "benign" in the audit review's list is not truth)."""
    anywhere = {"MALIGNANT", "BENIGN"} | {image_truth(i) for images in index.patients().values() for i in images
                                          if i.abnormalities}
    whole = {patient_truth(images) for images in index.patients().values()} | {"no lesion"}
    return [t for t in texts if any(word in t for word in anywhere) or t.strip() in whole]
