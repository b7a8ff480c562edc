"""The AI's marks on one pane: the predicted mask filled and outlined in yellow, and a probability heatmap.

The items are children of the pane's ``frame`` (stored-pixel coordinates, the
same parent as the image and the red truth outlines), so they sit on the image
pixels in mirrored and unmirrored panes alike and follow every zoom and pan.
Stacking, bottom to top: image, heatmap, yellow fill, yellow outline, red truth.

Zoomed out, a probability peak of a few working pixels would cover a few
screen pixels and vanish; the heatmap is then drawn with each peak spread to at
least HEAT_PEAK_RADIUS_PX screen pixels around it, by a grey-level maximum
filter (a peak keeps its value and colour; nothing is averaged away). At 1:1
and closer it is drawn as computed; the yellow outline always gives the extent.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem

from app.background.ai_results import AiImage  # no torch behind it

PREDICTION_COLOR = QColor(255, 255, 0)
DEFAULT_FILL_OPACITY = 0.35
OPACITY_STEP = 0.1
HEATMAP_OPACITY = 0.6
HEAT_PEAK_RADIUS_PX = 3  # zoomed out, each probability peak is drawn at least this many screen pixels in radius
Z_HEATMAP, Z_FILL, Z_OUTLINE, Z_TRUTH, Z_ROI = 1, 2, 3, 4, 5


def heatmap_lut() -> np.ndarray:
    """(256, 4) uint8 RGBA: turbo colours, transparent at low probability and rising to opaque.

    Below 5% nothing is drawn, so the anatomy stays visible where the network sees nothing.
    """
    colors = pg.colormap.get("turbo").getLookupTable(0.0, 1.0, 256, alpha=False)
    alpha = np.clip((np.arange(256) / 255.0 - 0.05) / 0.45, 0.0, 1.0) * 255
    return np.column_stack([colors, alpha]).astype(np.uint8)


def heat_spread_radius(stored_per_screen_px: float | None, stored_per_heat_px: float) -> int:
    """Working (heatmap) pixels to spread each peak by, so that it covers HEAT_PEAK_RADIUS_PX screen pixels around it."""
    if stored_per_screen_px is None or not math.isfinite(stored_per_screen_px) or stored_per_heat_px <= 0:
        return 0
    return max(0, int(round(HEAT_PEAK_RADIUS_PX * stored_per_screen_px / stored_per_heat_px)))


def spread_peaks(heat: np.ndarray, radius: int) -> np.ndarray:
    """``heat`` with each pixel the maximum of the disc of ``radius`` around it (``heat`` itself below radius 1)."""
    if radius < 1 or heat.size == 0:
        return heat
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(heat, disc)


def outlines_path(outlines: list[np.ndarray]) -> QPainterPath:
    path = QPainterPath()
    for points in outlines:
        path.addPath(pg.arrayToQPath(points[:, 0], points[:, 1], connect="all"))
    return path


class PredictionLayer:
    """The AI items of one pane. Keeps no state beyond what it draws."""

    _lut: np.ndarray | None = None

    def __init__(self, frame: QGraphicsItem) -> None:
        self.frame = frame
        self.fill = pg.ImageItem(axisOrder="row-major")
        self.fill.setParentItem(frame)
        self.fill.setZValue(Z_FILL)
        self.heatmap = pg.ImageItem(axisOrder="row-major")
        self.heatmap.setParentItem(frame)
        self.heatmap.setZValue(Z_HEATMAP)
        self.outline = QGraphicsPathItem(frame)
        pen = QPen(PREDICTION_COLOR)
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self.outline.setPen(pen)
        self.outline.setZValue(Z_OUTLINE)
        self.roi_marker = pg.TargetItem(movable=False, size=14, pen=pg.mkPen(PREDICTION_COLOR, width=1.5))
        self.roi_marker.setParentItem(frame)
        self.roi_marker.setZValue(Z_ROI)
        self.roi_box = QGraphicsRectItem(frame)  # the tile the ROI result comes from: nothing is seen outside it
        box_pen = QPen(PREDICTION_COLOR)
        box_pen.setCosmetic(True)
        box_pen.setWidthF(1.0)
        box_pen.setStyle(Qt.PenStyle.DashLine)
        self.roi_box.setPen(box_pen)
        self.roi_box.setZValue(Z_ROI)
        self.ai: AiImage | None = None
        self.stored_per_screen_px: float | None = None  # the pane's zoom, for the heatmap's peaks
        self.heat_radius = 0  # working pixels the shown heatmap's peaks are spread by
        self.show_prediction = True
        self.show_heatmap = False
        self.set_fill_opacity(DEFAULT_FILL_OPACITY)
        self.heatmap.setOpacity(HEATMAP_OPACITY)
        self.clear()

    @classmethod
    def lut(cls) -> np.ndarray:
        if cls._lut is None:
            cls._lut = heatmap_lut()
        return cls._lut

    def clear(self) -> None:
        self.ai = None
        self.fill.clear()
        self.heatmap.clear()
        self.outline.setPath(QPainterPath())
        self._apply_visibility()

    def set_result(self, ai: AiImage) -> None:
        self.ai = ai
        if ai.fill.size:
            x0, y0 = ai.fill_origin
            h, w = ai.fill.shape[:2]
            self.fill.setImage(ai.fill, autoLevels=False, levels=(0, 255))
            self.fill.setRect(QRectF(x0, y0, w, h))
        else:
            self.fill.clear()
        self.outline.setPath(outlines_path(ai.outlines))
        self.outline.setToolTip(f"AI prediction ({len(ai.result.lesions)} lesion{'s' if len(ai.result.lesions) != 1 else ''})")
        self._show_heat(force=True)
        if ai.roi_point is not None:
            self.roi_marker.setPos(ai.roi_point[0] + 0.5, ai.roi_point[1] + 0.5)
        if ai.roi_rect is not None:
            self.roi_box.setRect(QRectF(*ai.roi_rect))
        self._apply_visibility()

    def set_screen_scale(self, stored_per_screen_px: float | None) -> None:
        """The pane's zoom changed: spread the heatmap's peaks anew when it needs another radius."""
        self.stored_per_screen_px = stored_per_screen_px
        self._show_heat()

    def _show_heat(self, force: bool = False) -> None:
        ai = self.ai
        if ai is None:
            return
        if ai.heat.size == 0:
            self.heatmap.clear()
            return
        radius = heat_spread_radius(self.stored_per_screen_px, ai.heat_rect[2] / ai.heat.shape[1])
        if radius == self.heat_radius and not force:
            return
        self.heat_radius = radius
        self.heatmap.setImage(spread_peaks(ai.heat, radius), autoLevels=False, levels=(0, 255), lut=self.lut())
        self.heatmap.setRect(QRectF(*ai.heat_rect))

    def set_visible(self, prediction: bool, heatmap: bool) -> None:
        self.show_prediction, self.show_heatmap = prediction, heatmap
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        has = self.ai is not None
        self.fill.setVisible(has and self.show_prediction and self.ai.fill.size > 0)
        self.outline.setVisible(has and self.show_prediction)
        self.heatmap.setVisible(has and self.show_heatmap)
        self.roi_marker.setVisible(has and self.ai.roi_point is not None)
        self.roi_box.setVisible(has and self.ai.roi_rect is not None)

    def set_fill_opacity(self, opacity: float) -> None:
        self.fill.setOpacity(opacity)

    @property
    def fill_opacity(self) -> float:
        return self.fill.opacity()
