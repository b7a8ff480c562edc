"""The worklist dock: patients and their images, ground truth, AI score, review status; filters, search, next/previous.

It fills as the index reports patients ready, so the reader can start on the
first patients of a large download while the rest is still being indexed.
In blinded reading the ground-truth and AI columns are hidden (and the
AI-flagged filter is off): they would tell the reader the answer.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QComboBox, QDockWidget, QHBoxLayout, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from model.data.study_index import IndexedImage, StudyIndex

from app.case_text import FLAG_SCORE, image_label, image_truth, patient_truth, percent

PATIENT_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
MALIGNANT_COLOR = QColor(220, 60, 60)
DISAGREE_COLOR = QColor(235, 150, 40)
TRUTH_COLUMN, AI_COLUMN, REVIEW_COLUMN = 1, 2, 3
FILTERS = {  # shown name -> patient test on (review status, AI score)
    "All patients": lambda status, score: True,
    "Unread": lambda status, score: status == "unread",
    "Reviewed": lambda status, score: status in ("reviewed", "disagreement"),
    "Disagreement with AI": lambda status, score: status == "disagreement",
    "AI-flagged": lambda status, score: score is not None and score >= FLAG_SCORE,
}
STATUS_TEXT = {"unread": "", "reviewed": "reviewed", "disagreement": "disagrees"}
STATUS_TIPS = {"unread": "not reviewed yet", "reviewed": "reviewed: the latest review agrees with the AI, or is an own read",
               "disagreement": "the latest review disagrees with the AI"}


class WorklistDock(QDockWidget):
    """Emits ``patientSelected(patient_id)`` and ``imageSelected(patient_id, path)`` as the reader moves."""

    patientSelected = Signal(str)
    imageSelected = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Worklist", parent)
        self.setObjectName("worklistDock")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Patient ID (Ctrl+F)")
        self.search.setToolTip("Type part of a patient ID; Enter opens the match (an exact ID, or the only one listed)")
        self.search.setClearButtonEnabled(True)
        self.filter = QComboBox()
        self.filter.addItems(list(FILTERS))
        self.filter.setToolTip("Show only unread, reviewed, AI-flagged or disagreeing patients")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Patient / image", "Ground truth", "AI", "Review"])
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 130)
        self.tree.setAlternatingRowColors(True)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        row.addWidget(self.search, 1)
        row.addWidget(self.filter)
        layout.addLayout(row)
        layout.addWidget(self.tree)
        self.setWidget(body)
        self._patients: dict[str, list[IndexedImage]] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._image_items: dict[str, QTreeWidgetItem] = {}
        self._scores: dict[str, dict[str, float]] = {}  # patient -> image path -> case score of that image
        self._status: dict[str, str] = {}  # patient -> "reviewed" / "disagreement" (absent: unread)
        self.blinded = False
        self.reading = False  # reading mode: no ground truth written anywhere in the list, not even hidden
        self.search.textChanged.connect(self.apply_filter)
        self.search.returnPressed.connect(self.open_search_match)
        self.filter.currentTextChanged.connect(lambda _text: self.apply_filter())
        self.tree.currentItemChanged.connect(self._on_current_changed)

    def set_index(self, index: StudyIndex | None) -> None:
        """Show ``index`` whole; patients already listed (as the indexing reported them) keep their rows."""
        if index is None:
            self.tree.clear()
            self._items, self._image_items, self._scores, self._patients = {}, {}, {}, {}
            self._finish_adding()
            return
        patients = index.patients()
        if list(patients) != list(self._patients):
            current = self.current_patient()
            self.tree.blockSignals(True)
            self.tree.clear()
            self._items, self._image_items, self._patients = {}, {}, {}
            self.tree.blockSignals(False)
            self.add_images(index.images)
            if current in self._items:
                self.tree.blockSignals(True)
                self.tree.setCurrentItem(self._items[current])
                self.tree.blockSignals(False)
        else:
            self._patients = patients
            self._finish_adding()

    def add_images(self, images: list[IndexedImage]) -> None:
        """Append patients as the indexing reports them ready (whole patients, in the index's order)."""
        grouped: dict[str, list[IndexedImage]] = {}
        for image in images:
            grouped.setdefault(image.patient_id, []).append(image)
        self.tree.blockSignals(True)
        for patient_id, group in grouped.items():
            if patient_id in self._items:  # a patient in two reports (should not happen): keep one row
                continue
            self._patients[patient_id] = group
            self._add_patient(patient_id, group)
        self.tree.blockSignals(False)
        self._finish_adding()

    def _add_patient(self, patient_id: str, images: list[IndexedImage]) -> None:
        truth = patient_truth(images) if not self.reading else ""
        item = QTreeWidgetItem([patient_id, truth])
        item.setData(0, PATIENT_ROLE, patient_id)
        item.setToolTip(0, f"{patient_id}: {len(images)} image{'s' if len(images) != 1 else ''}")
        if truth == "MALIGNANT":
            item.setForeground(TRUTH_COLUMN, QBrush(MALIGNANT_COLOR))
        for image in images:
            child = QTreeWidgetItem([image_label(image), image_truth(image) if not self.reading else ""])
            child.setData(0, PATIENT_ROLE, patient_id)
            child.setData(0, PATH_ROLE, image.path)
            child.setToolTip(0, image.path)
            if not self.reading:
                child.setToolTip(TRUTH_COLUMN, image_truth(image))
            if image.malignant and not self.reading:
                child.setForeground(TRUTH_COLUMN, QBrush(MALIGNANT_COLOR))
            item.addChild(child)
            self._image_items[image.path] = child
        self.tree.addTopLevelItem(item)
        self._items[patient_id] = item
        for path, score in self._scores.get(patient_id, {}).items():
            if path in self._image_items:
                self._show_score(self._image_items[path], score)
        if self._scores.get(patient_id):
            self._show_score(item, max(self._scores[patient_id].values()))
        self._show_status(patient_id)

    def _finish_adding(self) -> None:
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(AI_COLUMN, self.fontMetrics().horizontalAdvance("100%") + 16)
        self.tree.setColumnWidth(REVIEW_COLUMN, self.fontMetrics().horizontalAdvance("disagrees") + 16)
        self.setWindowTitle(f"Worklist ({len(self._patients)} patients)")
        self.apply_filter()

    # -- review status and blinded reading

    def set_review_statuses(self, statuses: dict[str, str]) -> None:
        """Statuses of every reviewed patient (``ReviewStore.statuses()``); the others are unread."""
        self._status = dict(statuses)
        for patient_id in self._items:
            self._show_status(patient_id)
        self.apply_filter()

    def set_review_status(self, patient_id: str, status: str) -> None:
        self._status[patient_id] = status
        self._show_status(patient_id)
        self.apply_filter()

    def review_status(self, patient_id: str) -> str:
        return self._status.get(patient_id, "unread")

    def _show_status(self, patient_id: str) -> None:
        item = self._items.get(patient_id)
        if item is None:
            return
        status = self.review_status(patient_id)
        item.setText(REVIEW_COLUMN, STATUS_TEXT.get(status, status))
        item.setToolTip(REVIEW_COLUMN, STATUS_TIPS.get(status, status))
        if status == "disagreement":
            item.setForeground(REVIEW_COLUMN, QBrush(DISAGREE_COLOR))
        else:
            item.setData(REVIEW_COLUMN, Qt.ItemDataRole.ForegroundRole, None)

    def set_blinded(self, blinded: bool) -> None:
        """Blinded reading: no ground truth and no AI in the list (and no AI-flagged filter)."""
        self.blinded = blinded
        self.tree.setColumnHidden(TRUTH_COLUMN, blinded)
        self.tree.setColumnHidden(AI_COLUMN, blinded)
        flagged = self.filter.findText("AI-flagged")
        self.filter.model().item(flagged).setEnabled(not blinded)
        if blinded and self.filter.currentIndex() == flagged:
            self.filter.setCurrentIndex(0)

    def set_reading(self, reading: bool) -> None:
        """Reading mode: the rows are written again without the ground truth (not merely hidden), and the truth
        and AI columns are hidden; audit mode writes them again."""
        if reading == self.reading:
            return
        self.reading = reading
        current = self.current_patient()
        patients = self._patients
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items, self._image_items, self._patients = {}, {}, {}
        for patient_id, images in patients.items():
            self._patients[patient_id] = images
            self._add_patient(patient_id, images)
        if current in self._items:
            self.tree.setCurrentItem(self._items[current])
        self.tree.blockSignals(False)
        self._finish_adding()
        self.set_blinded(reading or self.blinded)

    # -- AI scores

    def set_ai_score(self, patient_id: str, path: str, score: float) -> None:
        """An image's score arrived: show it, and the patient's (the highest of its images so far)."""
        item = self._items.get(patient_id)
        if item is None:
            return
        scores = self._scores.setdefault(patient_id, {})
        scores[path] = score
        if self.reading:
            return  # reading mode: the AI's scores are the site's policy's to show, in the Reading panel
        child = self._image_items.get(path)
        if child is not None:
            self._show_score(child, score)
        self._show_score(item, max(scores.values()))
        if self.filter.currentText() == "AI-flagged":
            self.apply_filter()

    def clear_ai_scores(self) -> None:
        """Another model: the scores shown were the previous one's."""
        self._scores = {}
        for item in [*self._items.values(), *self._image_items.values()]:
            item.setText(AI_COLUMN, "")
            item.setToolTip(AI_COLUMN, "")
        self.apply_filter()

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

    def apply_filter(self, text: str | None = None) -> None:
        """Show the patients that match the search text and the status filter."""
        needle = (self.search.text() if text is None else text).strip().lower()
        name = self.filter.currentText()
        keep = FILTERS["All patients"] if (self.blinded and name == "AI-flagged") else FILTERS.get(name, FILTERS["All patients"])
        for patient_id, item in self._items.items():
            shown = (not needle or needle in patient_id.lower()) and keep(self.review_status(patient_id), self.ai_score(patient_id))
            item.setHidden(not shown)

    def set_filter(self, name: str) -> bool:
        """Show one kind of patient; False (and nothing changes) for the AI-flagged filter in blinded reading."""
        index = self.filter.findText(name)
        if index < 0:
            raise ValueError(f"no worklist filter {name!r}")
        if self.blinded and name == "AI-flagged":
            return False
        self.filter.setCurrentIndex(index)
        return True

    # -- moving

    def select_patient(self, patient_id: str) -> bool:
        item = self._items.get(patient_id)
        if item is None:
            return False
        if item.isHidden():
            self.search.clear()
            self.filter.setCurrentIndex(0)
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        return True

    def open_search_match(self) -> str | None:
        """Enter in the search field: open the patient whose ID is typed whole, or the only one listed; the focus
        goes to the list so the reader's keys move on from there. None (focus in the list) when several match."""
        needle = self.search.text().strip().lower()
        visible = self.visible_patients()
        exact = [p for p in visible if p.lower() == needle]
        target = exact[0] if exact else (visible[0] if len(visible) == 1 else None)
        if target is not None:
            self.select_patient(target)
        self.tree.setFocus()  # several: the reader picks one with the arrow keys
        return target

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
