"""The magnifier lens (Z): the stored pixels under the cursor, at twice the screen's zoom and at least 1:1.

Fine calcifications are a few stored pixels wide; in a fitted view one screen
pixel covers several of them. The lens reads the full-resolution pixels (not
the screen) through the pane's current window/level LUT, mirrored as the pane
shows them, so what it magnifies is the image itself.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

LENS_PX = 260  # side of the lens on screen
LENS_GAIN = 2.0  # magnification over the pane's current zoom


def lens_pixels(pane, col: float, row: float, side: int = LENS_PX, gain: float = LENS_GAIN) -> np.ndarray | None:
    """uint8 greys (side x side) of the stored image around (col, row), as the pane windows and mirrors it."""
    loaded = pane.loaded
    if loaded is None or pane.window is None:
        return None
    px = pane.image_px_per_screen_px()
    if px is None or not math.isfinite(px) or px <= 0:
        px = 1.0
    stored_per_lens_px = min(px / gain, 1.0)  # never coarser than 1:1
    half = max(2, int(round(side * stored_per_lens_px / 2)))
    data = loaded.pyramid[0]
    rows, cols = data.shape[:2]
    r0, c0 = int(row) - half, int(col) - half
    crop = np.zeros((2 * half, 2 * half), dtype=data.dtype) + data.min()
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r0 + 2 * half, rows), max(c0, 0), min(c0 + 2 * half, cols)
    if rr1 <= rr0 or cc1 <= cc0:
        return None
    crop[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0] = data[rr0:rr1, cc0:cc1]
    lut = loaded.lut(pane.window, pane.invert)
    index = np.clip(crop.astype(np.int64) - loaded.levels[0], 0, len(lut) - 1)
    grey = lut[index]
    if pane.mirrored_on_screen:
        grey = grey[:, ::-1]
    interpolation = cv2.INTER_NEAREST if stored_per_lens_px < 1.0 else cv2.INTER_AREA
    return np.ascontiguousarray(cv2.resize(grey, (side, side), interpolation=interpolation))


class Magnifier(QLabel):
    """A square lens centred on the cursor, drawn over the reading area; mouse events pass through it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setFixedSize(LENS_PX + 4, LENS_PX + 4)
        self.setStyleSheet("QLabel { border: 2px solid #ffb050; background: black; }")
        self.enabled = False
        self.pixels: np.ndarray | None = None
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
        self.setPixmap(QPixmap.fromImage(image.copy()))
        self.move(where.x() - self.width() // 2, where.y() - self.height() // 2)
        self.show()
        self.raise_()
        return True
