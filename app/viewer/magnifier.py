"""The magnifier lens (Z): the stored pixels under the cursor, at twice the screen's zoom and at least 1:1.

Fine calcifications are a few stored pixels wide; in a fitted view one screen
pixel covers several of them. The lens reads the full-resolution pixels (not
the screen) through the pane's current window/level LUT, mirrored as the pane
shows them, so what it magnifies is the image itself. The red truth and yellow
prediction outlines that are on screen are drawn in the lens too, at its scale.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QLabel, QWidget

LENS_PX = 260  # side of the lens on screen
LENS_GAIN = 2.0  # magnification over the pane's current zoom


def lens_geometry(pane, col: float, row: float, side: int = LENS_PX, gain: float = LENS_GAIN) -> tuple[int, int, int]:
    """(first stored row, first stored column, half side in stored pixels) of the square the lens shows."""
    px = pane.image_px_per_screen_px()
    if px is None or not math.isfinite(px) or px <= 0:
        px = 1.0
    stored_per_lens_px = min(px / gain, 1.0)  # never coarser than 1:1
    half = max(2, int(round(side * stored_per_lens_px / 2)))
    return int(row) - half, int(col) - half, half


def lens_pixels(pane, col: float, row: float, side: int = LENS_PX, gain: float = LENS_GAIN) -> np.ndarray | None:
    """uint8 greys (side x side) of the stored image around (col, row), as the pane windows and mirrors it."""
    loaded = pane.loaded
    if loaded is None or pane.window is None:
        return None
    r0, c0, half = lens_geometry(pane, col, row, side, gain)
    stored_per_lens_px = 2 * half / side
    data = loaded.pyramid[0]
    rows, cols = data.shape[:2]
    crop = np.full((2 * half, 2 * half), loaded.levels[0], dtype=data.dtype)  # outside the image: the LUT's first grey
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r0 + 2 * half, rows), max(c0, 0), min(c0 + 2 * half, cols)
    if rr1 <= rr0 or cc1 <= cc0:
        return None
    crop[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0] = data[rr0:rr1, cc0:cc1]
    lut = pane.image_item.lut  # the table the pane shows with, computed once per window change
    index = np.clip(crop.astype(np.int64) - loaded.levels[0], 0, len(lut) - 1)
    grey = lut[index]
    if pane.mirrored_on_screen:
        grey = grey[:, ::-1]
    interpolation = cv2.INTER_NEAREST if stored_per_lens_px < 1.0 else cv2.INTER_AREA
    return np.ascontiguousarray(cv2.resize(grey, (side, side), interpolation=interpolation))


def lens_transform(pane, col: float, row: float, side: int = LENS_PX) -> QTransform:
    """Stored-pixel coordinates to lens pixels (mirrored as the pane shows the image)."""
    r0, c0, half = lens_geometry(pane, col, row, side)
    scale = side / (2 * half)
    if pane.mirrored_on_screen:
        return QTransform(-scale, 0, 0, scale, (c0 + 2 * half) * scale, -r0 * scale)
    return QTransform(scale, 0, 0, scale, -c0 * scale, -r0 * scale)


def _paint_outlines(image: QImage, pane, col: float, row: float) -> None:
    """The outlines visible on the pane (truth red, prediction yellow), with 2 px cosmetic pens."""
    items = [item for item in pane.truth_items if item.isVisible()]
    if pane.prediction.outline.isVisible():
        items.append(pane.prediction.outline)
    if not items:
        return
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setTransform(lens_transform(pane, col, row))
    for item in items:
        pen = QPen(item.pen())
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        painter.setPen(pen)
        painter.drawPath(item.path())
    painter.end()


class Magnifier(QLabel):
    """A square lens centred on the cursor, drawn over the reading area; mouse events pass through it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setFixedSize(LENS_PX + 4, LENS_PX + 4)
        self.setStyleSheet("QLabel { border: 2px solid #ffb050; background: black; }")
        self.enabled = False
        self.pixels: np.ndarray | None = None  # the greys, before the outlines are drawn
        self.image: QImage | None = None  # what the lens shows
        self.hide()

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        if not on:
            self.hide()

    def show_at(self, pane, col: float, row: float, where: QPoint) -> bool:
        """Show the lens around stored pixel (col, row), centred on ``where`` (parent coordinates)."""
        if not self.enabled:
            return False
        grey = lens_pixels(pane, col, row)
        if grey is None:
            self.hide()
            return False
        self.pixels = grey
        image = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format.Format_Grayscale8)
        image = image.convertToFormat(QImage.Format.Format_RGB32)
        _paint_outlines(image, pane, col, row)
        self.image = image
        self.setPixmap(QPixmap.fromImage(image))
        self.move(where.x() - self.width() // 2, where.y() - self.height() // 2)
        self.show()
        self.raise_()
        return True
