"""The findings dock: the case score, then per image the network's lesions against the ground truth.

Per lesion: p(malignant), benign/malignant, area and longest diameter (mm when
the pixel spacing is known, else pixels) and hit / false positive; truth
lesions the network missed are listed too, and each image gets its Dice and
IoU. Choosing a row emits ``lesionActivated(path, box)``; the window centres the
panes on it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QDockWidget, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from model.data.study_index import Abnormality, IndexedImage

from app.background.ai_results import AiFailure, AiImage
from app.case_text import (
    ASSUMED_MARK,
    FLAG_SCORE,
    abnormality_text,
    area_text,
    image_label,
    image_truth,
    lesion_size_texts,
    patient_truth,
    percent,
    short_truth,
)
from app.trust_text import trust_html

PATH_ROLE = Qt.ItemDataRole.UserRole
BOX_ROLE = Qt.ItemDataRole.UserRole + 1
SPAN_ROLE = Qt.ItemDataRole.UserRole + 2  # rows whose text spans all columns (image and truth rows)
COLUMNS = ["Finding", "p(malignant)", "vs truth", "Area", "Longest Ø"]  # narrow enough for a 440 px dock
COLUMN_TIPS = [
    "L1, L2…: lesions the AI found (yellow), most suspicious first; T1, T2…: ground-truth lesions (red)",
    "the AI's probability that the lesion is malignant, and its call at 50%",
    "a lesion: which truth lesion it overlaps (hit T1) or none (false positive); a truth lesion: found or missed",
    "area; * at the pixel spacing the model assumed, when the file gives none",
    "longest diameter; * at the pixel spacing the model assumed, when the file gives none",
]
P_COLUMN, VERDICT_COLUMN, AREA_COLUMN, DIAMETER_COLUMN = 1, 2, 3, 4
HIT_COLOR = QColor(80, 190, 90)
MISS_COLOR = QColor(230, 70, 70)
MALIGNANT_COLOR = QColor(230, 70, 70)


def fine_pass_text(result) -> str | None:
    """'fine pass: 2 tiles at 0.1 mm' for a whole view a two-pass model read; None otherwise."""
    if result.mode == "roi" or result.fine_rois <= 0:
        return None
    tiles = f"{result.fine_rois} tile{'s' if result.fine_rois != 1 else ''}"
    return f"fine pass: {tiles} at {result.geometry.working_spacing_mm:g} mm"


def _truth_detail_of(a: Abnormality) -> str:
    """One truth lesion with its descriptors ('MALIGNANT mass (IRREGULAR, SPICULATED; BI-RADS 5)')."""
    extra = [v for v in (a.mass_shape, a.mass_margins, a.calc_type, a.calc_distribution) if v]
    if a.assessment is not None:
        extra.append(f"BI-RADS {a.assessment}")
    return abnormality_text(a) + (f" ({', '.join(extra)})" if extra else "")


def _truth_detail(image: IndexedImage) -> str:
    """The image's ground truth with its descriptors."""
    if not image.abnormalities:
        return image_truth(image)
    return "; ".join(_truth_detail_of(a) for a in image.abnormalities)


class FindingsDock(QDockWidget):
    lesionActivated = Signal(str, object)  # image path, (x0, y0, x1, y1) on the original grid

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Findings", parent)
        self.setObjectName("findingsDock")
        self.summary = QLabel()
        self.summary.setObjectName("findingsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)  # blinded: no gap above it
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        for column, tip in enumerate(COLUMN_TIPS):
            self.tree.headerItem().setToolTip(column, tip)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setColumnWidth(0, self.fontMetrics().horizontalAdvance("L10") + 2 * self.tree.indentation() + 8)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree)
        self.setWidget(body)
        self.patient_id: str | None = None
        self.images: list[IndexedImage] = []
        self.results: dict[str, AiImage] = {}  # what each image's rows show: the whole view, or the reader's ROI
        self.whole_scores: dict[str, float] = {}  # the case score counts whole-view results only
        self.failures: dict[str, AiFailure] = {}  # images the AI could not run on, with the reason
        self.status = ""
        self.trust = None  # the model's MalignancyTrust: shown under the case score
        self.blinded = False
        self.reading = False  # reading mode: no ground truth here at all, whatever the AI does
        self.tree.currentItemChanged.connect(lambda current, _previous: self._activate(current))
        self.tree.itemClicked.connect(lambda item, _column: self._activate(item) if item is self.tree.currentItem() else None)
        self.set_case(None, [])

    # -- content

    def set_case(self, patient_id: str | None, images: list[IndexedImage], status: str = "") -> None:
        """A new case: its CC images, no results yet."""
        self.patient_id = patient_id
        self.images = list(images)
        self.results = {}
        self.whole_scores = {}
        self.failures = {}
        self.status = status
        self._rebuild()

    def set_status(self, text: str) -> None:
        """What the AI is doing or why it is not ('AI running: R CC 3/12 tiles', 'No model: …')."""
        self.status = text
        self._update_summary()

    def set_result(self, ai: AiImage) -> bool:
        if all(image.path != ai.path for image in self.images):
            return False
        self.results[ai.path] = ai
        self.failures.pop(ai.path, None)
        if not ai.is_roi:
            self.whole_scores[ai.path] = ai.result.case_score
        self._rebuild()
        return True

    def set_failure(self, failure: AiFailure) -> bool:
        """The AI could not run on one of the case's images: its row says why, in one line."""
        if all(image.path != failure.path for image in self.images):
            return False
        self.failures[failure.path] = failure
        self.results.pop(failure.path, None)
        self._rebuild()
        return True

    def drop_roi_results(self, whole: dict[str, AiImage]) -> None:
        """Leaving ROI mode: show the whole-view results again."""
        self.results = {p: whole[p] for p in whole if any(i.path == p for i in self.images)}
        self.status = ""
        self._rebuild()

    def set_trust(self, trust) -> None:
        """How far the model's malignancy call can be trusted (model.registry.versions.MalignancyTrust; None: no model
        loaded): one line under the case score, in warning colour when it is not shown to beat chance."""
        self.trust = trust
        self._update_summary()

    def set_blinded(self, blinded: bool) -> None:
        """Blinded reading: neither the AI's findings nor the ground truth are listed until the reveal."""
        self.blinded = blinded
        self.tree.setVisible(not blinded)
        self._update_summary()

    def score(self) -> float | None:
        """The case score: the highest lesion p(malignant) over the whole-view results so far."""
        return max(self.whole_scores.values()) if self.whole_scores else None

    def _update_summary(self) -> None:
        if self.patient_id is None:
            self.summary.setText("No case shown")
            return
        score = self.score()
        lines = [f"<b>{self.patient_id}</b>"]
        if self.reading:
            lines.append('<span style="color:#ffb050">Reading mode: no ground truth is shown. Read the case in the '
                         "Reading panel; the AI follows the site's policy there.</span>")
            self.summary.setText("<br>".join(lines))
            return
        if self.blinded:
            lines.append('<span style="color:#ffb050">Blinded reading: the AI findings and the ground truth are hidden '
                         "until you record your own read in Review (Ctrl+Return).</span>")
            if self.status:
                lines.append(f'<span style="color:#aaaaaa">{self.status}</span>')
            self.summary.setText("<br>".join(lines))
            return
        if score is not None:
            done = len(self.whole_scores)
            partial = "" if done == len(self.images) else f" ({done} of {len(self.images)} views)"
            style = f' style="color:{MALIGNANT_COLOR.name()}"' if score >= FLAG_SCORE else ""  # else the palette's text colour
            lines.append(f"Case score <b{style}>{percent(score)}</b> (highest lesion p(malignant)){partial}")
        if self.trust is not None and (score is not None or self.results):
            lines.append(trust_html(self.trust))
        lines.append(f"Ground truth: {patient_truth(self.images) if self.images else 'no images'}")
        assumed = {r.result.spacing_mm for r in self.results.values() if not r.result.spacing_known and r.result.spacing_mm}
        if assumed:
            lines.append(f'<span style="color:#aaaaaa">{ASSUMED_MARK} mm at an assumed '
                         f'{", ".join(f"{s:.3f}" for s in sorted(assumed))} mm pixel spacing: the file gives none</span>')
        if self.status:
            lines.append(f'<span style="color:#aaaaaa">{self.status}</span>')
        self.summary.setText("<br>".join(lines))

    def set_reading(self, reading: bool) -> None:
        """Reading mode: the list (which holds the ground truth beside the AI) is emptied and stays empty; audit
        mode fills it again."""
        self.reading = reading
        self._rebuild()

    def _rebuild(self) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        for image in self.images if not self.reading else ():
            item = self._image_item(image, self.results.get(image.path), self.failures.get(image.path))
            self.tree.addTopLevelItem(item)
            for row in (item, *(item.child(j) for j in range(item.childCount()))):
                if row.data(0, SPAN_ROLE):
                    row.setFirstColumnSpanned(True)  # only works once the row is in the tree
        self.tree.expandAll()
        self.tree.blockSignals(False)
        for column in range(1, len(COLUMNS)):
            self.tree.resizeColumnToContents(column)
        self._update_summary()

    def _image_item(self, image: IndexedImage, ai: AiImage | None, failure: AiFailure | None = None) -> QTreeWidgetItem:
        """The image's row (what ran, how many lesions, Dice/IoU), its truth, its lesions, then missed truth."""
        item = QTreeWidgetItem([f"{image_label(image)} — AI pending…"])
        if failure is not None and ai is None:
            item.setText(0, f"{image_label(image)} — AI could not run: {failure.message}")
            item.setToolTip(0, failure.text)
            item.setForeground(0, QBrush(MISS_COLOR))
        item.setData(0, PATH_ROLE, image.path)
        item.setData(0, SPAN_ROLE, True)
        font = QFont(item.font(0))
        font.setBold(True)
        item.setFont(0, font)
        if ai is None:
            for abnormality in sorted(image.abnormalities, key=lambda a: a.id):
                row = QTreeWidgetItem([f"T{abnormality.id}", short_truth(abnormality), "", "", ""])
                for column in range(len(COLUMNS)):
                    row.setToolTip(column, f"ground truth: {_truth_detail_of(abnormality)}")
                if abnormality.malignant:
                    row.setForeground(P_COLUMN, QBrush(MALIGNANT_COLOR))
                item.addChild(row)
            if not image.abnormalities:
                truth = QTreeWidgetItem([f"truth: {image_truth(image)}"])
                truth.setData(0, SPAN_ROLE, True)
                item.addChild(truth)
            return item
        result, comparison = ai.result, ai.comparison
        mode = f" ROI at ({ai.roi_point[0]:.0f}, {ai.roi_point[1]:.0f})" if ai.is_roi else ""
        count = len(result.lesions)
        text = f"{image_label(image)}{mode}: {count} lesion{'s' if count != 1 else ''}"
        if count:
            text += f", max {percent(max(l.p_malignant for l in result.lesions))}"
        if comparison.known:
            text += f" · Dice {comparison.dice:.2f}, IoU {comparison.iou:.2f}"
        item.setText(0, text)
        spacing = result.spacing_mm if result.spacing_mm else None
        spacing_note = ("" if result.spacing_known or not spacing else
                        f"; {ASSUMED_MARK} sizes at an assumed {spacing:.3f} mm pixel spacing (the file gives none)")
        item.setToolTip(0, f"{'one ROI tile' if ai.is_roi else 'whole view'}; model {result.model_version}; {result.device}; "
                           f"{'from the cache' if result.from_cache else f'{result.seconds:.1f} s'}"
                           + ("; Dice and IoU of the yellow mask against the red truth" if comparison.known else "")
                           + spacing_note)
        truth_names = {t: f"T{a.id}" for t, a in enumerate(comparison.truth)}
        for n, (lesion, hit) in enumerate(zip(result.lesions, comparison.lesion_hits), 1):
            area, diameter = lesion_size_texts(lesion, spacing)
            truths = comparison.lesion_truths[n - 1] if n - 1 < len(comparison.lesion_truths) else []
            truths = sorted(truths, key=lambda t: comparison.truth[t].id)  # 'hit T1, T2' in the rows' order
            verdict = {True: "hit " + ", ".join(truth_names[t] for t in truths) if truths else "hit",
                       False: "false positive", None: "—"}[hit]
            row = QTreeWidgetItem([f"L{n}", f"{percent(lesion.p_malignant)} {lesion.label}", verdict, area, diameter])
            row.setData(0, PATH_ROLE, image.path)
            row.setData(0, BOX_ROLE, tuple(lesion.bbox))
            row.setToolTip(0, f"peak probability {percent(lesion.peak_probability)}; box {lesion.bbox}; click to centre")
            if truths:
                row.setToolTip(VERDICT_COLUMN, "overlaps " + "; ".join(
                    f"{truth_names[t]}: {abnormality_text(comparison.truth[t])}" for t in truths))
            row.setTextAlignment(P_COLUMN, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if lesion.label == "malignant":
                row.setForeground(P_COLUMN, QBrush(MALIGNANT_COLOR))
            if hit is not None:
                row.setForeground(VERDICT_COLUMN, QBrush(HIT_COLOR if hit else MISS_COLOR))
            if spacing_note and lesion.area_mm2 is None:
                for column in (AREA_COLUMN, DIAMETER_COLUMN):
                    row.setToolTip(column, spacing_note[2:])
            item.addChild(row)
        # every truth lesion in its own row: what it is, and which lesion found it (or missed)
        order = sorted(range(len(comparison.truth)), key=lambda t: comparison.truth[t].id)
        for t in order:
            abnormality, found, box = comparison.truth[t], comparison.truth_hit[t], comparison.truth_boxes[t]
            by = [f"L{n + 1}" for n in comparison.found_by(t)]
            verdict = ("found by " + ", ".join(by)) if by else ("found" if found else "missed")
            area = area_text(comparison.truth_areas_px[t], spacing, result.spacing_known) if comparison.truth_areas_px else ""
            row = QTreeWidgetItem([f"T{abnormality.id}", short_truth(abnormality), verdict, area, ""])
            row.setData(0, PATH_ROLE, image.path)
            row.setData(0, BOX_ROLE, tuple(box))
            detail = _truth_detail_of(abnormality)
            for column in range(len(COLUMNS)):
                row.setToolTip(column, f"ground truth: {detail}; click to centre")
            if abnormality.malignant:
                row.setForeground(P_COLUMN, QBrush(MALIGNANT_COLOR))
            row.setForeground(VERDICT_COLUMN, QBrush(HIT_COLOR if found else MISS_COLOR))
            item.addChild(row)
        if not comparison.truth and not comparison.not_compared:
            truth = QTreeWidgetItem([f"truth: {image_truth(image)}"])
            truth.setData(0, SPAN_ROLE, True)
            item.addChild(truth)
        for lesion in comparison.not_compared:
            problem = f"{abnormality_text(lesion.abnormality)} (abnormality {lesion.abnormality.id}): {lesion.reason}"
            row = QTreeWidgetItem([f"not compared: {problem}"])
            row.setToolTip(0, problem)
            row.setData(0, SPAN_ROLE, True)
            item.addChild(row)
        fine = fine_pass_text(result)
        if fine:
            row = QTreeWidgetItem([fine])
            row.setToolTip(0, "a two-pass model: the coarse pass searched the whole breast, then the fine pass ran "
                              "its own tile, at its finer spacing, centred on each candidate; the lesions are listed "
                              "and scored from it")
            row.setData(0, SPAN_ROLE, True)
            item.addChild(row)
        return item

    # -- rows the tests and the window read

    def lesion_rows(self, path: str | None = None) -> list[QTreeWidgetItem]:
        """Rows that centre on something (lesions and missed truth), in order."""
        rows = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                child = top.child(j)
                if child.data(0, BOX_ROLE) is not None and (path is None or child.data(0, PATH_ROLE) == path):
                    rows.append(child)
        return rows

    def image_row(self, path: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.data(0, PATH_ROLE) == path:
                return top
        return None

    def _activate(self, item: QTreeWidgetItem | None) -> None:
        if item is None:
            return
        box = item.data(0, BOX_ROLE)
        if box is not None:
            self.lesionActivated.emit(item.data(0, PATH_ROLE), tuple(box))
