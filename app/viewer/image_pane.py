"""One mammogram pane: the image with its LUT, the ground-truth outlines and a corner label.

Coordinates: the pane's ``frame`` item is in stored-pixel coordinates (x =
column, y = row of the file). The frame is placed in the view so that the
chest wall sits at x = 0 and the nipple toward negative x; the left-breast
panes show their x axis inverted. So every pane shares one view coordinate
system ("distance from the chest wall"), and linking the panes' x and y ranges
gives mirror-image zoom and pan: zooming on one breast's chest wall shows the
other breast's chest wall too.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem, QGraphicsSimpleTextItem

from model.data.mammogram import WindowPreset

from app.background.case_loading import DisplayWindow, LoadedImage, TruthOutline, VoiTable
from app.case_text import image_label, window_text
from app.viewer.hanging import Slot
from app.viewer.overlays import Z_TRUTH, PredictionLayer

TRUTH_COLOR = QColor(255, 0, 0)
LABEL_COLOR = QColor(235, 235, 235)
NOTE_COLOR = QColor(150, 150, 150)
MARK_COLOR = QColor(0, 220, 255)  # the reader's own marks: neither the AI's yellow nor the truth's red

# Pyramid levels larger than this are handed to the ImageItem only around what is visible,
# with CROP_MARGIN of the visible size added on each side, snapped to CROP_SNAP pixels.
CROP_ABOVE_PIXELS = 2_000_000
CROP_MARGIN = 0.25
CROP_SNAP = 64


class ReadingViewBox(pg.ViewBox):
    """A ViewBox for reading: aspect locked, row 0 at the top, no menu; right-drag is window/level.

    ``windowDragged(dx, dy, is_start, is_finish)`` gives the drag so far in screen pixels.
    """

    windowDragged = Signal(float, float, bool, bool)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.disableAutoRange()

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.buttonDownScreenPos()
            self.windowDragged.emit(float(delta.x()), float(delta.y()), bool(ev.isStart()), bool(ev.isFinish()))
            return
        super().mouseDragEvent(ev, axis)


def _area(crop: tuple[int, int, int, int]) -> int:
    r0, r1, c0, c1 = crop
    return (r1 - r0) * (c1 - c0)


def outline_path(truth: TruthOutline) -> QPainterPath:
    path = QPainterPath()
    for points in truth.outlines:
        path.addPath(pg.arrayToQPath(points[:, 0], points[:, 1], connect="all"))
    return path


class _Badge:
    """Text on a translucent dark box, fixed to the pane (readable over bright film edges and labels)."""

    def __init__(self, parent: QGraphicsItem, color: QColor, size: int, bold: bool = False) -> None:
        self.box = QGraphicsRectItem(parent)
        self.box.setBrush(QBrush(QColor(0, 0, 0, 160)))
        self.box.setPen(QPen(Qt.PenStyle.NoPen))
        self.box.setZValue(100)
        self.item = QGraphicsSimpleTextItem(self.box)
        font = QFont()
        font.setPointSize(size)
        font.setBold(bold)
        self.item.setFont(font)
        self.item.setBrush(QBrush(color))
        self.item.setPos(5, 2)
        self.set_text("")

    def set_text(self, text: str) -> None:
        self.item.setText(text)
        rect = self.item.boundingRect()
        self.box.setRect(0, 0, rect.width() + 10, rect.height() + 4)
        self.box.setVisible(bool(text))

    def text(self) -> str:
        return self.item.text() if self.box.isVisible() else ""

    def size(self) -> tuple[float, float]:
        rect = self.box.rect()
        return rect.width(), rect.height()

    def move_to(self, x: float, y: float) -> None:
        self.box.setPos(x, y)


class ImagePane(QObject):
    """The image shown in one slot of the hanging."""

    def __init__(self, slot: Slot) -> None:
        super().__init__()
        self.slot = slot
        self.view = ReadingViewBox()
        self.view.invertX(slot.col == 1)  # left breast: chest wall on the pane's left
        self.frame = pg.ItemGroup()
        self.view.addItem(self.frame)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setParentItem(self.frame)
        self.truth_items: list[QGraphicsPathItem] = []
        self.mark_items: list = []  # the reader's marks of findings (reading mode)
        self.prediction = PredictionLayer(self.frame)
        self.loaded: LoadedImage | None = None
        self.window: DisplayWindow | None = None
        self.invert = False
        self.level = 0
        self.crop: tuple[int, int, int, int] | None = None  # (r0, r1, c0, c1) of the level shown; None = all
        self.show_problems = True
        self._label = _Badge(self.view, LABEL_COLOR, 12, bold=True)
        self._note = _Badge(self.view, NOTE_COLOR, 11)
        self.view.sigResized.connect(self._place_texts)
        self.view.sigTransformChanged.connect(self.refresh_pixels)
        self.set_note(f"no {slot.name}")

    # -- texts fixed to the pane's corners (children of the ViewBox, not of its scrolling contents)

    def _place_texts(self, *_) -> None:
        rect = self.view.rect()
        width, _ = self._label.size()
        self._label.move_to(6 if self.slot.col == 0 else rect.width() - width - 6, 6)  # the outer top corner
        width, height = self._note.size()
        self._note.move_to((rect.width() - width) / 2, (rect.height() - height) / 2)

    def set_note(self, text: str) -> None:
        """A grey message in the middle of the pane ('loading…', 'no L MLO', an error)."""
        self._note.set_text(text)
        self._place_texts()

    @property
    def note(self) -> str:
        return self._note.text()

    @property
    def label(self) -> str:
        return self._label.text()

    # -- content

    def set_marks(self, marks: list[tuple[float, float, str]]) -> None:
        """The reader's marks on this image: a cyan target with the finding's number at each (x, y) pixel."""
        for item in self.mark_items:
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.mark_items = []
        for x, y, label in marks:
            target = pg.TargetItem(pos=(x, y), size=18, movable=False, pen=pg.mkPen(MARK_COLOR, width=2),
                                   label=label, labelOpts={"color": MARK_COLOR, "offset": (10, -10)})
            target.setParentItem(self.frame)
            target.setZValue(30)
            self.mark_items.append(target)

    def clear(self, note: str = "") -> None:
        self.loaded = None
        self.window = None
        self.image_item.clear()
        self._remove_truth()
        self.set_marks([])
        self.prediction.clear()
        self._label.set_text("")
        self.image_item.setToolTip("")
        self.set_note(note)

    def set_image(self, loaded: LoadedImage, window: DisplayWindow, invert: bool, show_truth: bool) -> None:
        self.loaded = loaded
        self.window = window
        self.invert = invert
        rows, cols = loaded.shape
        # Chest wall at x = 0, nipple toward negative x, whatever side the file stores it on.
        if loaded.chest_wall == "left":
            self.frame.setTransform(QTransform.fromScale(-1.0, 1.0))
        else:
            self.frame.setTransform(QTransform.fromTranslate(-float(cols), 0.0))
        self.image_item.setLevels(loaded.levels, update=False)
        self.image_item.setLookupTable(loaded.lut(window, invert), update=False)
        self.refresh_pixels(force=True)
        self._remove_truth()
        self.prediction.clear()
        for truth in loaded.truth:
            item = QGraphicsPathItem(outline_path(truth), self.frame)
            pen = QPen(TRUTH_COLOR)
            pen.setCosmetic(True)
            pen.setWidthF(2.0)
            item.setPen(pen)
            item.setToolTip(truth.label)
            item.setZValue(Z_TRUTH)
            item.setVisible(show_truth)
            self.truth_items.append(item)
        self._show_label()
        self.set_note("")

    def _show_label(self) -> None:
        """'R CC', plus the count of truth masks not drawn (their reasons in the tooltip) unless blinded."""
        loaded = self.loaded
        label = image_label(loaded.indexed)
        problems = loaded.problems if self.show_problems else []
        if problems:
            label += f"   ({len(problems)} truth mask{'s' if len(problems) > 1 else ''} not drawn)"
        self._label.set_text(label)
        self.image_item.setToolTip("\n".join(problems))
        self._place_texts()

    def set_problems_visible(self, visible: bool) -> None:
        """Blinded reading: a truth mask that cannot be drawn must not tell that a lesion is there."""
        self.show_problems = visible
        if self.loaded is not None:
            self._show_label()

    def _remove_truth(self) -> None:
        for item in self.truth_items:
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.truth_items = []

    def set_truth_visible(self, visible: bool) -> None:
        for item in self.truth_items:
            item.setVisible(visible)

    # -- display

    def set_window(self, window: DisplayWindow, invert: bool | None = None) -> None:
        """Recompute only the LUT (at most 65,536 entries); the pixels stay where they are."""
        if self.loaded is None:
            return
        self.window = window
        if invert is not None:
            self.invert = invert
        self.image_item.setLookupTable(self.loaded.lut(window, self.invert))

    def linear_window(self) -> WindowPreset | None:
        """The current window as center/width (a VOI table starts a drag from the automatic window)."""
        if self.loaded is None or self.window is None:
            return None
        if isinstance(self.window, VoiTable):
            return self.loaded.default_linear_window()
        return self.window

    def window_text(self) -> str:
        if self.window is None:
            return ""
        if isinstance(self.window, VoiTable):
            return self.window.name
        text = window_text(self.window.center, self.window.width)
        if self.window.function != "LINEAR":
            text += f" {self.window.function}"
        return f"{text}  {self.window.name}" if self.window.name else text

    def window_name(self) -> str:
        """The preset's name alone ('Auto (tissue)', 'manual', a VOI table's name)."""
        return "" if self.window is None else self.window.name

    def image_px_per_screen_px(self) -> float | None:
        """Stored pixels per device pixel at the current zoom; None while the pane is not on screen."""
        scene = self.view.scene()
        if scene is None or self.view.width() < 1:
            return None
        views = scene.views()
        ratio = views[0].devicePixelRatioF() if views else 1.0
        return self.view.viewRect().width() / (self.view.width() * ratio)

    def _wanted_level(self) -> int:
        """The pyramid level whose pixels are about one screen pixel at the current zoom."""
        px = self.image_px_per_screen_px()
        if px is None or not math.isfinite(px) or px < 2:
            return 0
        return int(math.floor(math.log2(px)))

    def _wanted_crop(self, level: np.ndarray) -> tuple[int, int, int, int] | None:
        """The part of a big pyramid level worth handing to the ImageItem: what is visible, plus a margin.

        At 1:1 on a 5000x3000 image only a screenful is on screen; looking up
        only that part keeps a window/level drag as fast as when zoomed out.
        """
        if level.size <= CROP_ABOVE_PIXELS or self.loaded is None:
            return None
        rows, cols = self.loaded.shape
        sy, sx = level.shape[0] / rows, level.shape[1] / cols
        seen = self.frame.mapRectFromParent(self.view.viewRect())  # stored-pixel coordinates
        if seen.width() <= 0 or seen.height() <= 0:
            return None
        my, mx = seen.height() * CROP_MARGIN, seen.width() * CROP_MARGIN
        r0 = max(0, int((seen.top() - my) * sy) // CROP_SNAP * CROP_SNAP)
        c0 = max(0, int((seen.left() - mx) * sx) // CROP_SNAP * CROP_SNAP)
        r1 = min(level.shape[0], -(-int(math.ceil((seen.bottom() + my) * sy)) // CROP_SNAP) * CROP_SNAP)
        c1 = min(level.shape[1], -(-int(math.ceil((seen.right() + mx) * sx)) // CROP_SNAP) * CROP_SNAP)
        if r1 <= r0 or c1 <= c0:
            return (0, min(level.shape[0], CROP_SNAP), 0, min(level.shape[1], CROP_SNAP))
        return (r0, r1, c0, c1)

    def _crop_still_covers(self, level: np.ndarray) -> bool:
        """True while the current crop holds everything visible (so a pan needs no new crop)."""
        if self.crop is None or self.loaded is None:
            return False
        rows, cols = self.loaded.shape
        sy, sx = level.shape[0] / rows, level.shape[1] / cols
        seen = self.frame.mapRectFromParent(self.view.viewRect())
        r0, r1, c0, c1 = self.crop
        return (
            (r0 == 0 or seen.top() * sy >= r0) and (r1 == level.shape[0] or seen.bottom() * sy <= r1)
            and (c0 == 0 or seen.left() * sx >= c0) and (c1 == level.shape[1] or seen.right() * sx <= c1)
        )

    def refresh_pixels(self, *_, force: bool = False) -> None:
        """Hand the ImageItem the pyramid level (and part of it) that the current zoom needs.

        A new crop is cut only when the visible part leaves the current one or
        is much smaller than it (after a zoom in), so most pans cost nothing.
        """
        if self.loaded is None:
            return
        self.prediction.set_screen_scale(self.image_px_per_screen_px())
        level_index = min(self._wanted_level(), len(self.loaded.pyramid) - 1)
        level = self.loaded.pyramid[level_index]
        crop = self._wanted_crop(level)
        if not force and level_index == self.level:
            if crop is None and self.crop is None:
                return
            if crop is not None and self.crop is not None and self._crop_still_covers(level):
                if _area(self.crop) <= 2 * _area(crop):
                    return
        self.level, self.crop = level_index, crop
        rows, cols = self.loaded.shape
        sy, sx = rows / level.shape[0], cols / level.shape[1]  # stored pixels per level pixel
        if crop is None:
            self.image_item.setImage(level, autoLevels=False)
            self.image_item.setRect(QRectF(0, 0, cols, rows))
        else:
            r0, r1, c0, c1 = crop
            self.image_item.setImage(level[r0:r1, c0:c1], autoLevels=False)
            self.image_item.setRect(QRectF(c0 * sx, r0 * sy, (c1 - c0) * sx, (r1 - r0) * sy))

    # -- geometry (for the status bar and for tests)

    def view_point_of_pixel(self, x: float, y: float) -> QPointF:
        """Where stored-pixel coordinates (x, y) lie in the view's coordinates (the ones setRange takes)."""
        return self.frame.mapToParent(QPointF(x, y))

    def stored_pixel_at(self, scene_pos: QPointF) -> tuple[int, int]:
        """(col, row) of the stored image under a scene position."""
        p = self.frame.mapFromScene(scene_pos)
        return int(math.floor(p.x())), int(math.floor(p.y()))

    def scene_x_of_column(self, col: float) -> float:
        rows = self.loaded.shape[0] if self.loaded else 1
        return float(self.frame.mapToScene(QPointF(col, rows / 2)).x())

    @property
    def mirrored_on_screen(self) -> bool:
        """True when the picture is the mirror image of the stored file."""
        frame_mirrored = self.frame.transform().m11() < 0
        return frame_mirrored != self.view.xInverted()

    def contains(self, scene_pos: QPointF) -> bool:
        return self.view.scene() is not None and self.view.sceneBoundingRect().contains(scene_pos)

    def displayed_array(self) -> np.ndarray | None:
        """The pixels the ImageItem holds now (a pyramid level, or the visible part of one)."""
        return None if self.loaded is None else self.image_item.image
