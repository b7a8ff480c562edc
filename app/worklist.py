"""The worklist dock: patients and their images, ground truth, AI score, a patient-ID search, next/previous."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QDockWidget, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from model.study_index import IndexedImage, StudyIndex

from app.case_text import FLAG_SCORE, image_label, image_truth, patient_truth, percent

PATIENT_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
MALIGNANT_COLOR = QColor(220, 60, 60)
AI_COLUMN = 2


class WorklistDock(QDockWidget):
    """Emits ``patientSelected(patient_id)`` and ``imageSelected(patient_id, path)`` as the reader moves."""

    patientSelected = Signal(str)
    imageSelected = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Worklist", parent)
        self.setObjectName("worklistDock")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search patient ID  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Patient / image", "Ground truth", "AI"])
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 130)
        self.tree.setAlternatingRowColors(True)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.setWidget(body)
        self._patients: dict[str, list[IndexedImage]] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._image_items: dict[str, QTreeWidgetItem] = {}
        self._scores: dict[str, dict[str, float]] = {}  # patient -> image path -> case score of that image
        self.search.textChanged.connect(self.apply_filter)
        self.tree.currentItemChanged.connect(self._on_current_changed)

    def set_index(self, index: StudyIndex | None) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items = {}
        self._image_items = {}
        self._scores = {}
        self._patients = index.patients() if index is not None else {}
        for patient_id, images in self._patients.items():
            truth = patient_truth(images)
            item = QTreeWidgetItem([patient_id, truth])
            item.setData(0, PATIENT_ROLE, patient_id)
            item.setToolTip(0, f"{patient_id}: {len(images)} image{'s' if len(images) != 1 else ''}")
            if truth == "MALIGNANT":
                item.setForeground(1, QBrush(MALIGNANT_COLOR))
            for image in images:
                child = QTreeWidgetItem([image_label(image), image_truth(image)])
                child.setData(0, PATIENT_ROLE, patient_id)
                child.setData(0, PATH_ROLE, image.path)
                child.setToolTip(0, image.path)
                child.setToolTip(1, image_truth(image))
                if image.malignant:
                    child.setForeground(1, QBrush(MALIGNANT_COLOR))
                item.addChild(child)
                self._image_items[image.path] = child
            self.tree.addTopLevelItem(item)
            self._items[patient_id] = item
        self.tree.blockSignals(False)
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(AI_COLUMN, self.fontMetrics().horizontalAdvance("100%") + 16)
        self.setWindowTitle(f"Worklist ({len(self._patients)} patients)")
        self.apply_filter(self.search.text())

    # -- AI scores

    def set_ai_score(self, patient_id: str, path: str, score: float) -> None:
        """An image's score arrived: show it, and the patient's (the highest of its images so far)."""
        item = self._items.get(patient_id)
        if item is None:
            return
        scores = self._scores.setdefault(patient_id, {})
        scores[path] = score
        child = self._image_items.get(path)
        if child is not None:
            self._show_score(child, score)
        self._show_score(item, max(scores.values()))

    def ai_score(self, patient_id: str) -> float | None:
        scores = self._scores.get(patient_id)
        return max(scores.values()) if scores else None

    @staticmethod
    def _show_score(item: QTreeWidgetItem, score: float) -> None:
        item.setText(AI_COLUMN, percent(score))
        item.setTextAlignment(AI_COLUMN, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setToolTip(AI_COLUMN, f"AI score {100 * score:.1f}%: the highest lesion p(malignant)")
        if score >= FLAG_SCORE:
            item.setForeground(AI_COLUMN, QBrush(MALIGNANT_COLOR))
        else:
            item.setData(AI_COLUMN, Qt.ItemDataRole.ForegroundRole, None)

    # -- what is listed

    @property
    def patients(self) -> dict[str, list[IndexedImage]]:
        return self._patients

    def visible_patients(self) -> list[str]:
        return [pid for pid, item in self._items.items() if not item.isHidden()]

    def current_patient(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, PATIENT_ROLE) if item is not None else None

    def apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for patient_id, item in self._items.items():
            item.setHidden(bool(needle) and needle not in patient_id.lower())

    # -- moving

    def select_patient(self, patient_id: str) -> bool:
        item = self._items.get(patient_id)
        if item is None:
            return False
        if item.isHidden():
            self.search.clear()
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        return True

    def step(self, delta: int) -> bool:
        """Move to the next (+1) or previous (-1) listed patient; False at either end."""
        visible = self.visible_patients()
        if not visible:
            return False
        current = self.current_patient()
        if current not in visible:
            target = visible[0] if delta > 0 else visible[-1]
        else:
            i = visible.index(current) + delta
            if not 0 <= i < len(visible):
                return False
            target = visible[i]
        return self.select_patient(target)

    def _on_current_changed(self, current: QTreeWidgetItem | None, previous: QTreeWidgetItem | None) -> None:
        if current is None:
            return
        patient_id = current.data(0, PATIENT_ROLE)
        previous_patient = previous.data(0, PATIENT_ROLE) if previous is not None else None
        path = current.data(0, PATH_ROLE)
        if patient_id != previous_patient:
            self.patientSelected.emit(patient_id)
        if path:
            self.imageSelected.emit(patient_id, path)
