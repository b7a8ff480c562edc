"""The reading area: 2-up (CC) or 4-up (CC over MLO) panes, linked zoom and pan, shared window/level, AI marks."""

from __future__ import annotations

import math
from dataclasses import replace

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QPainter
from PySide6.QtWidgets import QLabel, QToolTip, QVBoxLayout, QWidget

from model.data.mammogram import WindowPreset
from model.data.study_index import IndexedImage

from app.background.ai_results import AiImage
from app.background.case_loading import LoadedImage, LoadFailure
from app.case_text import image_label, position_text
from app.viewer.hanging import SLOTS_4UP, Slot, hang, slots
from app.viewer.image_pane import ImagePane
from app.viewer.magnifier import Magnifier
from app.viewer.overlays import DEFAULT_FILL_OPACITY, OPACITY_STEP

# Right-drag: this many screen pixels to the right double the window width;
# one pixel down moves the center by width / CENTER_PX_PER_WIDTH.
WIDTH_DOUBLING_PX = 200.0
CENTER_PX_PER_WIDTH = 400.0
# Space left above and below a fitted image, as a fraction of its height.
FIT_MARGIN = 0.01
# Centring on a lesion zooms so that it spans about 1 / LESION_ZOOM_SPAN of the pane, but never
# closer than 1:1 pixels nor further out than the current view.
LESION_ZOOM_SPAN = 5.0


def chest_wall_shift(x_min: float, x_max: float, image_width: float, allowance: float | None = None) -> float:
    """How far to move a pane's x range so that the chest walls stay at the divider, as a reading station keeps them.

    The panes' x is the distance from the chest wall (x = 0) toward the nipple
    (x = -image_width), mirrored on the left breast's panes (app/image_pane.py),
    so one rule holds both sides: while the whole width fits, the chest wall
    stays on the divider (x_max = 0); zoomed in further, a pan moves it under
    the divider only until the nipple edge reaches the outer edge
    (x_min >= -image_width), and never pulls it away from the divider
    (x_max <= 0, no black gap in the middle of the screen).

    ``allowance``: an x_max outside these bounds that an explicit centring on a
    lesion chose; the bounds stretch to it, so the next pan does not jump and can
    only bring the chest wall back toward the divider.
    """
    low, high = min(0.0, (x_max - x_min) - image_width), 0.0
    if allowance is not None:
        low, high = min(low, allowance), max(high, allowance)
    return min(max(x_max, low), high) - x_max


class _Canvas(pg.GraphicsLayoutWidget):
    """The panes' drawing surface; tells when the mouse leaves it (the status bar then clears)."""

    left = Signal()

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self.left.emit()


class HangingView(QWidget):
    """Shows one patient. Emits status texts; holds no model state beyond what is on screen."""

    cursorMoved = Signal(str)  # pixel value and position under the cursor
    windowChanged = Signal(str)  # C/W of the pane under the cursor (or the first pane)
    caseShown = Signal(str)  # patient id, once every pane of the current layout has its image
    roiClicked = Signal(str, float, float)  # in ROI mode, a left click: image path, original-pixel x (column), y (row)
    markClicked = Signal(str, float, float)  # in mark mode (a reader marking a finding): the same

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = _Canvas()
        self.canvas.setBackground("k")
        self.canvas.ci.setContentsMargins(0, 0, 0, 0)
        self.canvas.ci.layout.setSpacing(4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)

        self.panes: dict[Slot, ImagePane] = {slot: ImagePane(slot) for slot in SLOTS_4UP}
        first = self.panes[SLOTS_4UP[0]].view
        for pane in self.panes.values():
            if pane.view is not first:
                pane.view.setXLink(first)
                pane.view.setYLink(first)
            pane.view.windowDragged.connect(self._on_window_drag)
            pane.view.sigRangeChangedManually.connect(self._on_manual_range)
            pane.view.sigResized.connect(self._on_pane_resized)
            pane.view.sigRangeChanged.connect(self._keep_chest_walls)
        first.sigRangeChanged.connect(self._on_range_changed)
        self.canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.canvas.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.canvas.left.connect(self._on_mouse_left)
        self.canvas.viewport().installEventFilter(self)  # no tooltips over the magnifier

        self.legend = QLabel(self)
        self.legend.setObjectName("truthLegend")
        self.legend.setStyleSheet("QLabel { background: rgba(0,0,0,170); color: #dddddd; padding: 3px 6px; }")

        self.four_up = False
        self.invert = False
        self.show_truth = True
        self.show_prediction = True
        self.show_heatmap = False
        self.fill_opacity = DEFAULT_FILL_OPACITY
        self.roi_mode = False
        self.mark_mode = False
        self.reading = False  # reading mode (app.reading_controller): the legend says so
        self.marks: dict[str, list[tuple[float, float, str]]] = {}  # image path -> the reader's marks
        self.blinded = False  # blinded reading: AI and ground truth hidden whatever the toggles say
        self.sigmoid = False  # VOI function SIGMOID instead of the window's own (S)
        self.lens = Magnifier(self.canvas.viewport())
        self.ai: dict[str, AiImage] = {}  # path -> the AI result drawn on it (current patient only)
        self.preset_index = 0
        self.patient_id: str | None = None
        self.assignment: dict[Slot, IndexedImage] = {}
        self.load_order: list[IndexedImage] = []  # the case's images, those on screen first
        self.failed: dict[Slot, str] = {}
        self.hover_pane: ImagePane | None = None
        self._fitted = True
        self._refit_queued = False
        self._pan_allowance: float | None = None  # see chest_wall_shift
        self._clamping = False
        self._drag_start: dict[ImagePane, WindowPreset] = {}
        self._shown_emitted = False
        self._last_scene_pos: QPointF | None = None
        self._arrange()
        self.show_message("Open a folder (File → Open folder, Ctrl+O)")

    # -- layout

    def _arrange(self) -> None:
        self.canvas.ci.clear()
        for slot in slots(self.four_up):
            self.canvas.ci.addItem(self.panes[slot].view, row=slot.row, col=slot.col)
        self._update_legend()

    def visible_panes(self) -> list[ImagePane]:
        return [self.panes[s] for s in slots(self.four_up)]

    def set_four_up(self, four_up: bool) -> None:
        if four_up == self.four_up:
            return
        self.four_up = four_up
        self._arrange()
        self.fit()
        self._check_complete()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_legend()

    def _place_legend(self) -> None:
        self.legend.adjustSize()
        self.legend.move(self.width() - self.legend.width() - 8, self.height() - self.legend.height() - 8)
        self.legend.raise_()

    def set_reading(self, reading: bool) -> None:
        """Reading mode: the legend speaks of the site's AI policy, and of no ground truth at all."""
        self.reading = reading
        self._update_legend()

    def _update_legend(self) -> None:
        lines = []
        if self.reading:
            if self.blinded:
                lines.append('<span style="color:#ffb050; font-weight:bold">Reading</span>: the AI is hidden until '
                             'your read is committed<br>(the site\'s policy)')
            elif self.ai:
                lines.append('<span style="color:#ffff00; font-weight:bold">&#9632;&#9473;</span>&nbsp; AI prediction'
                             if self.show_prediction else '<span style="color:#888888">AI prediction hidden (A)</span>')
            self.legend.setText("<br>".join(lines))
            self.legend.setVisible(self.patient_id is not None and bool(lines))
            self._place_legend()
            return
        if self.blinded:
            lines.append('<span style="color:#ffb050; font-weight:bold">Blinded reading</span>: AI and ground truth '
                         'hidden<br>until you record your own read (Ctrl+Return)')
        if self.ai and not self.blinded:
            if self.show_prediction:
                lines.append('<span style="color:#ffff00; font-weight:bold">&#9632;&#9473;</span>&nbsp; AI prediction')
            else:
                lines.append('<span style="color:#888888">AI prediction hidden (A)</span>')
            if self.show_heatmap:
                lines.append('<span style="color:#30a0ff">&#9632;</span><span style="color:#40ff80">&#9632;</span>'
                             '<span style="color:#ff4020">&#9632;</span>&nbsp; AI probability (low → high)')
        if not self.blinded:
            if self.show_truth:
                lines.append('<span style="color:#ff0000; font-weight:bold">&#9473;&#9473;</span>&nbsp; ground truth')
            else:
                lines.append('<span style="color:#888888">ground truth hidden (T)</span>')
        self.legend.setText("<br>".join(lines))
        self.legend.setVisible(self.patient_id is not None)
        self._place_legend()

    def set_blinded(self, blinded: bool) -> None:
        """Blinded reading: hide the AI marks and the ground truth (the toggles keep their state for later)."""
        if blinded == self.blinded:
            return
        self.blinded = blinded
        self._drop_tooltip()
        for pane in self.panes.values():
            pane.set_truth_visible(self.truth_shown)
            pane.set_problems_visible(not blinded)
        self._apply_ai_visibility()
        self._refresh_lens()  # it draws the outlines that are on screen

    @property
    def truth_shown(self) -> bool:
        return self.show_truth and not self.blinded

    # -- content

    def show_message(self, text: str) -> None:
        """No case: every pane empty, the message in the first."""
        self.patient_id = None
        self._drop_tooltip()
        self.assignment = {}
        self.load_order = []
        self.failed = {}
        self.ai = {}
        for i, pane in enumerate(self.panes.values()):
            pane.clear(text if i == 0 else "")
        self._update_legend()

    def show_patient(self, patient_id: str, images: list[IndexedImage]) -> list[IndexedImage]:
        """Clear the panes for a new patient; returns the images to load, those on screen first."""
        self.patient_id = patient_id
        self.lens.hide()  # until the mouse moves over the new images
        self._drop_tooltip()
        self._pan_allowance = None
        self.assignment = hang(images)
        self.failed = {}
        self.ai = {}
        self.preset_index = 0
        self._fitted = True
        self._shown_emitted = False
        for slot, pane in self.panes.items():
            image = self.assignment.get(slot)
            pane.clear(f"loading {image_label(image)}…" if image else f"no {slot.name}")
        self._update_legend()
        order = [*slots(self.four_up), *(s for s in SLOTS_4UP if s not in slots(self.four_up))]
        self.load_order = [self.assignment[s] for s in order if s in self.assignment]
        return self.load_order

    def _slot_of(self, path: str) -> Slot | None:
        return next((s for s, image in self.assignment.items() if image.path == path), None)

    def place(self, loaded: LoadedImage) -> bool:
        """Show a loaded image if it belongs to the current case; False when it does not."""
        slot = self._slot_of(loaded.indexed.path)
        if slot is None:
            return False
        pane = self.panes[slot]
        window = self._voi(loaded.windows[min(self.preset_index, len(loaded.windows) - 1)])
        pane.show_problems = not self.blinded
        pane.set_image(loaded, window, self.invert, self.truth_shown)
        pane.set_marks(self.marks.get(loaded.indexed.path, []))
        if loaded.indexed.path in self.ai:
            pane.prediction.set_result(self.ai[loaded.indexed.path])
        if self._fitted:
            self.fit()
        self._emit_window()
        self._check_complete()
        return True

    def place_failure(self, failure: LoadFailure) -> bool:
        slot = self._slot_of(failure.indexed.path)
        if slot is None:
            return False
        self.failed[slot] = failure.message
        self.panes[slot].clear(f"{slot.name}: {failure.message}")
        self._check_complete()
        return True

    def is_complete(self) -> bool:
        return self.patient_id is not None and all(
            self.panes[s].loaded is not None or s in self.failed for s in slots(self.four_up) if s in self.assignment
        )

    def _check_complete(self) -> None:
        if not self._shown_emitted and self.is_complete():
            self._shown_emitted = True
            self.caseShown.emit(self.patient_id)

    def cc_images(self) -> list[IndexedImage]:
        """The images of the CC row (what the network runs on), right breast first."""
        return [self.assignment[s] for s in slots(False) if s in self.assignment]

    def pane_of(self, path: str) -> ImagePane | None:
        slot = self._slot_of(path)
        return self.panes[slot] if slot is not None else None

    def problems(self) -> list[str]:
        return [p for pane in self.visible_panes() if pane.loaded for p in pane.loaded.problems]

    # -- zoom and pan (the panes are linked, so setting the first pane's range moves all)

    def fit(self) -> None:
        """Whole images, chest walls flush with the middle of the screen, vertically centred."""
        shapes = [p.loaded.shape for p in self.visible_panes() if p.loaded is not None]
        if not shapes:
            return
        rows = max(s[0] for s in shapes)
        cols = max(s[1] for s in shapes)
        self._pan_allowance = None
        for pane in self.visible_panes():
            width, height = pane.view.width(), pane.view.height()
            if width < 2 or height < 2:  # not laid out yet: the ViewBox keeps this as its target
                pane.view.setRange(QRectF(-cols, 0, cols, rows), padding=FIT_MARGIN)
                continue
            per_px = max(rows * (1 + 2 * FIT_MARGIN) / height, cols * (1 + FIT_MARGIN) / width)
            half_height = height * per_px / 2
            pane.view.setRange(
                xRange=(-width * per_px, 0.0), yRange=(rows / 2 - half_height, rows / 2 + half_height), padding=0
            )
        self._fitted = True

    def _on_pane_resized(self, *_) -> None:
        if self._fitted and not self._refit_queued:
            self._refit_queued = True
            QTimer.singleShot(0, self._refit)

    def _refit(self) -> None:
        self._refit_queued = False
        if self._fitted:
            self.fit()

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, centred on the cursor when it is over an image (as far as the chest
        walls stay at the divider)."""
        panes = self.visible_panes()
        pane = self.hover_pane if self.hover_pane in panes else panes[0]
        view = pane.view
        ratio = self.canvas.devicePixelRatioF() or 1.0
        width, height = view.width() * ratio, view.height() * ratio
        if self._last_scene_pos is not None and pane.contains(self._last_scene_pos):
            center = view.mapSceneToView(self._last_scene_pos)
        else:
            center = view.viewRect().center()
        self._pan_allowance = None  # near the chest wall, the view keeps it at the divider rather than centre on it
        view.setRange(
            xRange=(center.x() - width / 2, center.x() + width / 2),
            yRange=(center.y() - height / 2, center.y() + height / 2),
            padding=0,
        )
        self._fitted = False

    def zoom(self, factor: float) -> None:
        """Zoom all panes about their centre (factor < 1 zooms in)."""
        self.visible_panes()[0].view.scaleBy((factor, factor))
        self._fitted = False

    def _on_manual_range(self, *_) -> None:
        self._fitted = False

    def _image_width(self) -> float | None:
        """Columns of the widest image on screen: the nipple edge every pane's x range may reach (-width)."""
        widths = [p.loaded.shape[1] for p in self.visible_panes() if p.loaded is not None]
        return float(max(widths)) if widths else None

    def _keep_chest_walls(self, view, *_) -> None:
        """After any change of a pane's range (drag, wheel, keys, links): chest walls back at the divider.

        The panes share one x coordinate, mirrored on the left breast's side, so a
        horizontal drag on either side already moves both breasts symmetrically, the
        dragged one with the hand; here only how far is bounded (chest_wall_shift).
        """
        if self._clamping or not any(p.view is view for p in self.visible_panes()):
            return
        width = self._image_width()
        if width is None:
            return
        x_min, x_max = view.viewRange()[0]
        shift = chest_wall_shift(x_min, x_max, width, self._pan_allowance)
        if abs(shift) > 1e-6 * max(1.0, x_max - x_min):
            self._clamping = True
            try:
                view.translateBy(x=shift)
            finally:
                self._clamping = False
            x_min, x_max = view.viewRange()[0]
        if self._pan_allowance is not None and chest_wall_shift(x_min, x_max, width) == 0.0:
            self._pan_allowance = None  # back within the ordinary bounds
        elif self._pan_allowance is not None:
            self._pan_allowance = x_max  # the gap left by a centring only ever shrinks

    def _on_range_changed(self, *_) -> None:
        # Smooth scaling when an image pixel is smaller than a screen pixel, sharp pixels when zoomed in.
        px = self.panes[SLOTS_4UP[0]].image_px_per_screen_px()
        if px is not None:
            self.canvas.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, math.isfinite(px) and px > 1.0)

    # -- window / level

    def _loaded_panes(self) -> list[ImagePane]:
        return [p for p in self.panes.values() if p.loaded is not None]

    def _on_window_drag(self, dx: float, dy: float, start: bool, finish: bool) -> None:
        if start or not self._drag_start:
            self._drag_start = {p: p.linear_window() for p in self._loaded_panes()}
        for pane, w0 in self._drag_start.items():
            if w0 is None or pane.loaded is None:
                continue
            width = max(1.0, w0.width * 2.0 ** (dx / WIDTH_DOUBLING_PX))
            center = w0.center + dy * w0.width / CENTER_PX_PER_WIDTH
            pane.set_window(WindowPreset(center=center, width=width, function=w0.function, name="manual"))
        if finish:
            self._drag_start = {}
        self._emit_window()

    def drag_window(self, dx: float, dy: float) -> None:
        """A whole right-drag of (dx, dy) screen pixels, as the mouse would do it (keyboard and tests)."""
        self._on_window_drag(dx, dy, True, False)
        self._on_window_drag(dx, dy, False, True)

    def preset_count(self) -> int:
        return max((len(p.loaded.windows) for p in self._loaded_panes()), default=0)

    def set_preset(self, index: int) -> str:
        """Show preset ``index`` (each pane clamps it to its own list); returns the preset's name.

        Only the name: each image has its own centre and width for the same preset, and
        the status bar shows those of the image under the cursor (windowChanged).
        """
        count = self.preset_count()
        if count == 0:
            return ""
        self.preset_index = index % count
        for pane in self._loaded_panes():
            pane.set_window(self._voi(pane.loaded.windows[min(self.preset_index, len(pane.loaded.windows) - 1)]))
        self._emit_window()
        return self._window_pane().window_name()

    def next_preset(self) -> str:
        return self.set_preset(self.preset_index + 1)

    def _voi(self, window):
        """``window`` with the VOI function the reader chose: SIGMOID when S is on (VOI tables stay as they are)."""
        if isinstance(window, WindowPreset):
            if self.sigmoid and window.function != "SIGMOID":
                return replace(window, function="SIGMOID")
        return window

    def set_sigmoid(self, on: bool) -> None:
        """S: the DICOM SIGMOID VOI function on the current windows (off: back to each preset's own function)."""
        self.sigmoid = on
        for pane in self._loaded_panes():
            window = pane.window
            if isinstance(window, WindowPreset):
                own = next((w for w in pane.loaded.windows if isinstance(w, WindowPreset)
                            and (w.center, w.width, w.name) == (window.center, window.width, window.name)), None)
                function = "SIGMOID" if on else (own.function if own is not None else "LINEAR")
                pane.set_window(replace(window, function=function))
        self._emit_window()

    def set_invert(self, invert: bool) -> None:
        self.invert = invert
        for pane in self._loaded_panes():
            pane.set_window(pane.window, invert)

    def set_truth_visible(self, visible: bool) -> None:
        self.show_truth = visible
        for pane in self.panes.values():
            pane.set_truth_visible(self.truth_shown)
        self._drop_tooltip()
        self._update_legend()

    # -- AI marks

    def set_ai_result(self, ai: AiImage) -> bool:
        """Draw ``ai`` on its image's pane (now, or when the image arrives); False when not on this case."""
        pane = self.pane_of(ai.path)
        if pane is None:
            return False
        self.ai[ai.path] = ai
        if pane.loaded is not None and pane.loaded.indexed.path == ai.path:
            pane.prediction.set_result(ai)
        self._update_legend()
        return True

    def remove_ai_result(self, path: str) -> None:
        self.ai.pop(path, None)
        pane = self.pane_of(path)
        if pane is not None:
            pane.prediction.clear()
        self._drop_tooltip()
        self._update_legend()

    def set_prediction_visible(self, visible: bool) -> None:
        self.show_prediction = visible
        self._apply_ai_visibility()

    def set_heatmap_visible(self, visible: bool) -> None:
        self.show_heatmap = visible
        self._apply_ai_visibility()

    def _apply_ai_visibility(self) -> None:
        for pane in self.panes.values():
            pane.prediction.set_visible(self.show_prediction and not self.blinded, self.show_heatmap and not self.blinded)
        self._drop_tooltip()
        self._update_legend()

    # -- tooltips (the outlines' and the image's): never about something no longer drawn, never over the lens

    @staticmethod
    def _drop_tooltip() -> None:
        """Hide a tooltip that is up: it may name an outline just hidden (A, T, blinded) or a case just left.

        A key that is a shortcut (A, T, N) reaches no widget as a key press, so Qt
        does not hide the tooltip by itself; it would stay up to 10 s.
        """
        if QToolTip.isVisible():
            QToolTip.hideText()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and watched is self.canvas.viewport() and self.lens.enabled:
            self._drop_tooltip()
            return True  # the lens sits under the cursor, where the tooltip would cover it
        return super().eventFilter(watched, event)

    def set_fill_opacity(self, opacity: float) -> float:
        self.fill_opacity = round(min(1.0, max(0.0, opacity)), 2)
        for pane in self.panes.values():
            pane.prediction.set_fill_opacity(self.fill_opacity)
        return self.fill_opacity

    def change_fill_opacity(self, steps: int) -> float:
        return self.set_fill_opacity(self.fill_opacity + steps * OPACITY_STEP)

    def set_roi_mode(self, on: bool) -> None:
        self.roi_mode = on
        if on:
            self.canvas.viewport().setCursor(QCursor(Qt.CursorShape.CrossCursor))
        else:
            self.canvas.viewport().unsetCursor()

    def set_marks(self, marks: dict[str, list[tuple[float, float, str]]]) -> None:
        """The reader's marks per image path (reading mode); images not named have none. Kept for images placed
        later."""
        self.marks = dict(marks)
        for pane in self.panes.values():
            if pane.loaded is not None:
                pane.set_marks(marks.get(pane.loaded.indexed.path, []))

    def set_mark_mode(self, on: bool) -> None:
        """The next left click on an image marks a finding there (it wins over ROI mode while on)."""
        self.mark_mode = on
        if on or self.roi_mode:
            self.canvas.viewport().setCursor(QCursor(Qt.CursorShape.CrossCursor))
        else:
            self.canvas.viewport().unsetCursor()

    def _on_mouse_clicked(self, event) -> None:
        if not (self.roi_mode or self.mark_mode) or event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        pane = self.pane_at(event.scenePos())
        if pane is None or pane.loaded is None:
            return
        col, row = pane.stored_pixel_at(event.scenePos())
        rows, cols = pane.loaded.shape
        if 0 <= col < cols and 0 <= row < rows:
            event.accept()
            (self.markClicked if self.mark_mode else self.roiClicked).emit(pane.loaded.indexed.path, float(col), float(row))

    def center_on(self, path: str, box: tuple[float, float, float, float]) -> bool:
        """Centre the (linked) panes on the box x0, y0, x1, y1 (stored pixels) of an image, zooming in modestly."""
        pane = self.pane_of(path)
        if pane is None or pane.loaded is None:
            return False
        if pane not in self.visible_panes():  # an MLO finding while the 2-up shows
            self.set_four_up(True)
        x0, y0, x1, y1 = box
        # Every pane shares the view coordinates (distance from the chest wall, row), and the first pane leads the links.
        center = pane.view_point_of_pixel((x0 + x1) / 2, (y0 + y1) / 2)
        view = self.panes[SLOTS_4UP[0]].view
        current = view.viewRect()
        short = max(1.0, min(current.width(), current.height()))
        ratio = self.canvas.devicePixelRatioF() or 1.0
        one_to_one = view.width() * ratio / max(1.0, current.width())  # the scale that shows stored pixels 1:1
        scale = min(1.0, max(max(x1 - x0, y1 - y0) * LESION_ZOOM_SPAN / short, one_to_one))
        width, height = current.width() * scale, current.height() * scale
        # The lesion is centred even near the chest wall (a black gap may open at the divider); the next pan
        # can only close that gap (see chest_wall_shift).
        self._pan_allowance = center.x() + width / 2
        view.setRange(
            xRange=(center.x() - width / 2, center.x() + width / 2),
            yRange=(center.y() - height / 2, center.y() + height / 2),
            padding=0,
        )
        self._fitted = False
        return True

    def _window_pane(self) -> ImagePane | None:
        """The pane whose window the status bar shows: the one under the cursor, else the first on screen."""
        if self.hover_pane is not None and self.hover_pane.loaded is not None:
            return self.hover_pane
        return next((p for p in self.visible_panes() if p.loaded is not None), None) or next(iter(self._loaded_panes()), None)

    def _emit_window(self) -> None:
        pane = self._window_pane()
        # Named, since the two breasts' images usually have different centres and widths.
        self.windowChanged.emit(f"{image_label(pane.loaded.indexed)}: {pane.window_text()}" if pane else "")
        self._refresh_lens()

    # -- magnifier

    def set_lens(self, on: bool) -> None:
        self.lens.set_enabled(on)
        if on:
            self._drop_tooltip()
        self._refresh_lens()

    def _refresh_lens(self) -> None:
        if not self.lens.enabled:
            return
        scene_pos = self._last_scene_pos
        pane = self.pane_at(scene_pos) if scene_pos is not None else None
        if pane is None or pane.loaded is None:
            self.lens.hide()
            return
        col, row = pane.stored_pixel_at(scene_pos)
        self.lens.show_at(pane, col + 0.5, row + 0.5, self.canvas.mapFromScene(scene_pos))

    # -- cursor

    def pane_at(self, scene_pos: QPointF) -> ImagePane | None:
        return next((p for p in self.visible_panes() if p.contains(scene_pos)), None)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self._last_scene_pos = scene_pos
        pane = self.pane_at(scene_pos)
        if pane is not self.hover_pane:
            self.hover_pane = pane
            self._emit_window()
        self.cursorMoved.emit(self.cursor_text(pane, scene_pos))
        self._refresh_lens()

    def _on_mouse_left(self) -> None:
        self.hover_pane = None
        self._last_scene_pos = None
        self.lens.hide()

    def cursor_text(self, pane: ImagePane | None, scene_pos: QPointF) -> str:
        if pane is None or pane.loaded is None:
            return ""
        col, row = pane.stored_pixel_at(scene_pos)
        value = pane.loaded.value_at(col, row)
        name = image_label(pane.loaded.indexed)
        if value is None:
            return f"{name}  outside the image"
        return f"{name}  {position_text(col, row, pane.loaded.spacing_mm)}  value {value:g}"
