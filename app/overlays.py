"""The AI's marks on one pane: the predicted mask filled and outlined in yellow, and a probability heatmap.

The items are children of the pane's ``frame`` (stored-pixel coordinates, the
same parent as the image and the red truth outlines), so they sit on the image
pixels in mirrored and unmirrored panes alike and follow every zoom and pan.
Stacking, bottom to top: image, heatmap, yellow fill, yellow outline, red truth.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem

from app.ai_results import AiImage  # no torch behind it

PREDICTION_COLOR = QColor(255, 255, 0)
DEFAULT_FILL_OPACITY = 0.35
OPACITY_STEP = 0.1
HEATMAP_OPACITY = 0.6
Z_HEATMAP, Z_FILL, Z_OUTLINE, Z_TRUTH, Z_ROI = 1, 2, 3, 4, 5


def heatmap_lut() -> np.ndarray:
    """(256, 4) uint8 RGBA: turbo colours, transparent at low probability and rising to opaque.

    Below 5% nothing is drawn, so the anatomy stays visible where the network sees nothing.
    """
    colors = pg.colormap.get("turbo").getLookupTable(0.0, 1.0, 256, alpha=False)
    alpha = np.clip((np.arange(256) / 255.0 - 0.05) / 0.45, 0.0, 1.0) * 255
    return np.column_stack([colors, alpha]).astype(np.uint8)


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
        self.heatmap.setImage(ai.heat, autoLevels=False, levels=(0, 255), lut=self.lut())
        self.heatmap.setRect(QRectF(*ai.heat_rect))
        if ai.roi_point is not None:
            self.roi_marker.setPos(ai.roi_point[0] + 0.5, ai.roi_point[1] + 0.5)
        if ai.roi_rect is not None:
            self.roi_box.setRect(QRectF(*ai.roi_rect))
        self._apply_visibility()

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
