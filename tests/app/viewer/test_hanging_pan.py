"""The mirrored hanging driven like a reader drives it: a horizontal drag moves both breasts symmetrically and keeps the
chest walls at the divider, vertical pan and zoom stay linked; over it the overlays' tooltips, the magnifier, the status
bar's window/level, and the heatmap zoomed out."""

from __future__ import annotations

import math
import re

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QHelpEvent, QImage, QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip

from model.infer.predictor import ImageResult, Lesion
from model.data.preprocess import Geometry
from model.data.study_index import IndexedImage
from tests.app.qt_helpers import open_root
from tests.conftest import make_dicom

from app.background.ai_results import prepare_ai_image
from app.background.case_loading import load_image
from app.case_text import image_label
from app.viewer.hanging import SLOTS_2UP, SLOTS_4UP
from app.viewer.hanging_view import HangingView, chest_wall_shift
from app.viewer.overlays import HEAT_PEAK_RADIUS_PX

TIMEOUT_MS = 20_000
PX = 1.5  # screen pixels of slack in positions


# -- the rule alone


def test_chest_wall_shift_keeps_the_chest_wall_at_the_divider():
    image = 300.0
    # the whole width fits: the chest wall (x = 0) sits on the divider whatever the pan asked
    assert chest_wall_shift(-400.0, 0.0, image) == 0.0
    assert chest_wall_shift(-350.0, 50.0, image) == -50.0  # a gap at the divider closes
    assert chest_wall_shift(-450.0, -50.0, image) == 50.0  # the chest wall comes back from under the divider
    # zoomed in (100 of 300 columns seen): anywhere between chest wall and nipple edge, no further
    assert chest_wall_shift(-180.0, -80.0, image) == 0.0
    assert chest_wall_shift(-90.0, 10.0, image) == -10.0
    assert chest_wall_shift(-350.0, -250.0, image) == 50.0  # x_min back to -300: the nipple edge at the outer edge
    # a centring left a 40-unit gap: it may shrink, never grow, and never jump
    assert chest_wall_shift(-70.0, 30.0, image, allowance=40.0) == 0.0
    assert chest_wall_shift(-50.0, 50.0, image, allowance=40.0) == -10.0


# -- the main window, no AI (the overlays are given their result directly where a test needs one)


@pytest.fixture(autouse=True)
def every_mouse_move():
    """pyqtgraph drops mouse moves less than 10 ms apart; a test moves faster than a hand."""
    rate = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOptions(mouseRateLimit=0)
    yield
    pg.setConfigOptions(mouseRateLimit=rate)


@pytest.fixture
def shown(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root, TIMEOUT_MS)
    patient_id = next(iter(index.patients()))
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        assert window.select_patient(patient_id)
    return window


def key(qtbot, window, k) -> None:
    qtbot.keyClick(window.viewer.canvas, k)


def four_up(qtbot, window) -> None:
    key(qtbot, window, Qt.Key.Key_M)
    qtbot.waitUntil(window.viewer.is_complete, timeout=TIMEOUT_MS)
    assert window.viewer.four_up


def on_screen(window, scene: QPointF) -> QPoint:
    return window.viewer.canvas.mapFromScene(scene)


def drag(qtbot, window, pane, dx: int, dy: int = 0, step: int = 150) -> None:
    """A left-button drag of (dx, dy) screen pixels that starts in the middle of ``pane``."""
    viewport = window.viewer.canvas.viewport()
    start = on_screen(window, pane.view.sceneBoundingRect().center())
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    n = max(1, math.ceil(max(abs(dx), abs(dy)) / step))
    for i in range(1, n + 1):
        QTest.mouseMove(viewport, start + QPoint(round(dx * i / n), round(dy * i / n)))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start + QPoint(dx, dy))
    qtbot.wait(10)


def pane_siblings(pane) -> list:
    """The panes on screen with ``pane`` (its HangingView is the parent of the canvas holding it)."""
    viewer = pane.view.scene().views()[0].parent()
    return [p for p in viewer.visible_panes() if p.loaded is not None]


def image_width(window) -> float:
    return float(max(p.loaded.shape[1] for p in window.viewer.visible_panes()))


def edges(pane) -> tuple[float, float, float, float]:
    """Scene x of the chest wall and of the widest image's nipple edge (view x = 0 and -width), and of the pane's
    inner (divider) and outer edge."""
    width = max(p.loaded.shape[1] for p in pane_siblings(pane))
    y = pane.view.viewRect().center().y()
    chest = pane.view.mapViewToScene(QPointF(0.0, y)).x()
    rect = pane.view.sceneBoundingRect()
    inner, outer = (rect.right(), rect.left()) if pane.slot.col == 0 else (rect.left(), rect.right())
    nipple = pane.view.mapViewToScene(QPointF(-width, y)).x()
    return chest, nipple, inner, outer


def screen_x(pane, view_x: float) -> float:
    return pane.view.mapViewToScene(QPointF(view_x, pane.view.viewRect().center().y())).x()


def zoom_until_narrower(qtbot, window, fraction: float) -> None:
    """Zoom in until the panes show less than ``fraction`` of the widest image's width."""
    viewer = window.viewer
    while viewer.visible_panes()[0].view.viewRect().width() > fraction * image_width(window):
        key(qtbot, window, Qt.Key.Key_Plus)
    qtbot.wait(10)


@pytest.mark.parametrize("layout", ["2-up", "4-up"])
def test_a_horizontal_drag_at_fit_keeps_every_chest_wall_on_the_divider(qtbot, shown, layout):
    window = shown
    if layout == "4-up":
        four_up(qtbot, window)
    key(qtbot, window, Qt.Key.Key_F)
    panes = window.viewer.visible_panes()
    for chest, _, inner, _ in map(edges, panes):
        assert chest == pytest.approx(inner, abs=PX)
    for dragged in panes:
        for dx in (150, -150):
            drag(qtbot, window, dragged, dx)
            for pane in panes:
                chest, _, inner, _ = edges(pane)
                assert chest == pytest.approx(inner, abs=PX), (dragged.slot.name, dx, pane.slot.name)
                assert pane.view.viewRange()[0][1] == pytest.approx(0.0, abs=1e-6)
    # vertical pan stays free and linked: every image moves down with the hand
    rows = [pane.view.mapViewToScene(QPointF(0.0, pane.loaded.shape[0] / 2)).y() for pane in panes]
    drag(qtbot, window, panes[-1], 0, 60)
    for pane, y0 in zip(panes, rows):
        y = pane.view.mapViewToScene(QPointF(0.0, pane.loaded.shape[0] / 2)).y()
        assert y - y0 == pytest.approx(60, abs=PX)
        assert edges(pane)[0] == pytest.approx(edges(pane)[2], abs=PX)


@pytest.mark.parametrize("layout", ["2-up", "4-up"])
def test_zoomed_in_a_drag_moves_both_breasts_mirrored_between_chest_wall_and_nipple(qtbot, shown, layout):
    window = shown
    if layout == "4-up":
        four_up(qtbot, window)
    zoom_until_narrower(qtbot, window, 0.45)
    panes = window.viewer.visible_panes()
    for dragged in panes:
        # toward the nipple: the dragged image follows the hand, the other breast moves as its mirror image
        outward = 60 if dragged.slot.col == 0 else -60
        middle = panes[0].view.viewRect().center().x()
        before = {pane: screen_x(pane, middle) for pane in panes}
        drag(qtbot, window, dragged, outward)
        for pane in panes:
            moved = screen_x(pane, middle) - before[pane]
            expected = outward if pane.slot.col == dragged.slot.col else -outward
            assert moved == pytest.approx(expected, abs=PX), (dragged.slot.name, pane.slot.name)
        # much further: it stops with the nipple edge at the outer edge of every pane
        drag(qtbot, window, dragged, 30 * outward)
        for pane in panes:
            _, nipple, _, outer = edges(pane)
            assert nipple == pytest.approx(outer, abs=PX), (dragged.slot.name, pane.slot.name)
        # and all the way back: the chest walls stop at the divider, no gap in the middle of the screen
        drag(qtbot, window, dragged, -30 * outward)
        for pane in panes:
            chest, _, inner, _ = edges(pane)
            assert chest == pytest.approx(inner, abs=PX), (dragged.slot.name, pane.slot.name)


def test_centring_near_the_chest_wall_centres_the_lesion_and_a_pan_only_closes_the_gap(qtbot, shown):
    window = shown
    viewer = window.viewer
    pane = viewer.panes[SLOTS_2UP[0]]
    rows, cols = pane.loaded.shape
    col = 15 if pane.loaded.chest_wall == "left" else cols - 15  # 15 stored pixels from the chest wall
    box = (col - 4, rows // 2 - 4, col + 4, rows // 2 + 4)
    assert viewer.center_on(pane.loaded.indexed.path, box)
    qtbot.wait(10)
    target = pane.view_point_of_pixel(col, rows // 2)
    center = pane.view.viewRect().center()
    assert (center.x(), center.y()) == pytest.approx((target.x(), target.y()), abs=1)  # centred, as clicked
    chest, _, inner, _ = edges(pane)
    gap = inner - chest
    assert gap > 10  # the chest wall left the divider to centre the lesion
    drag(qtbot, window, pane, 8)  # toward the divider: the gap shrinks by the drag, no jump
    chest, _, inner, _ = edges(pane)
    assert inner - chest == pytest.approx(gap - 8, abs=PX)
    drag(qtbot, window, pane, -40)  # away from it: refused, the gap never grows
    chest, _, inner, _ = edges(pane)
    assert inner - chest == pytest.approx(gap - 8, abs=PX)
    drag(qtbot, window, pane, 4000)
    drag(qtbot, window, pane, -4000)
    for other in viewer.visible_panes():
        chest, _, inner, _ = edges(other)
        assert chest == pytest.approx(inner, abs=PX)  # gap closed for good


def wheel(qtbot, window, point: QPoint, clicks: int) -> None:
    viewport = window.viewer.canvas.viewport()
    event = QWheelEvent(QPointF(point), QPointF(viewport.mapToGlobal(point)), QPoint(0, 0), QPoint(0, 120 * clicks),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, event)
    qtbot.wait(10)


def test_wheel_zoom_about_the_cursor_fit_and_one_to_one_keep_working(qtbot, shown):
    window = shown
    viewer = window.viewer
    pane = viewer.panes[SLOTS_2UP[1]]  # the mirrored side
    zoom_until_narrower(qtbot, window, 0.6)
    rect = pane.view.sceneBoundingRect()
    point = on_screen(window, QPointF(rect.left() + 0.4 * rect.width(), rect.top() + 0.4 * rect.height()))
    under = pane.view.mapSceneToView(viewer.canvas.mapToScene(point))
    width = pane.view.viewRect().width()
    wheel(qtbot, window, point, 1)
    assert pane.view.viewRect().width() < width  # zoomed in
    after = pane.view.mapSceneToView(viewer.canvas.mapToScene(point))
    upp = pane.view.viewRect().width() / pane.view.width()
    assert (after.x(), after.y()) == pytest.approx((under.x(), under.y()), abs=2 * upp)  # about the cursor
    key(qtbot, window, Qt.Key.Key_F)
    for other in viewer.visible_panes():
        chest, nipple, inner, outer = edges(other)
        assert chest == pytest.approx(inner, abs=PX)
        assert abs(nipple - inner) <= abs(outer - inner) + PX  # the whole width in view
    # while the whole width still fits, the wheel zooms about the cursor's row and holds the chest wall on the divider
    four_up(qtbot, window)  # wide panes: the images fit with room to spare across
    pane = viewer.panes[SLOTS_4UP[3]]
    rect = pane.view.sceneBoundingRect()
    point = on_screen(window, QPointF(rect.left() + 0.4 * rect.width(), rect.top() + 0.4 * rect.height()))
    row = pane.view.mapSceneToView(viewer.canvas.mapToScene(point)).y()
    width = pane.view.viewRect().width()
    wheel(qtbot, window, point, 1)
    assert image_width(window) <= pane.view.viewRect().width() < width
    assert pane.view.mapSceneToView(viewer.canvas.mapToScene(point)).y() == pytest.approx(row, abs=2)
    for other in viewer.visible_panes():
        assert edges(other)[0] == pytest.approx(edges(other)[2], abs=PX)
    key(qtbot, window, Qt.Key.Key_0)
    qtbot.wait(10)
    assert pane.image_px_per_screen_px() == pytest.approx(1.0, rel=0.02)
    for other in viewer.visible_panes():
        x_min, x_max = other.view.viewRange()[0]
        assert chest_wall_shift(x_min, x_max, image_width(window)) == pytest.approx(0.0, abs=1e-6)


# -- tooltips and the magnifier over the overlays


def disc_result(image: IndexedImage, shape: tuple[int, int], cx: int, cy: int, r: int, scale: float = 1.0) -> ImageResult:
    """A result whose probability is one disc (working grid ``scale`` times the original, uncropped, unflipped)."""
    rows, cols = shape
    working = (max(1, round(rows * scale)), max(1, round(cols * scale)))
    yy, xx = np.mgrid[: working[0], : working[1]]
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    probability = np.where(inside, 235, 0).astype(np.uint8)
    geometry = Geometry((rows, cols), (0, rows, 0, cols), False, scale, working, 0.4, False)
    ys, xs = np.nonzero(inside)
    lesion = Lesion(bbox=[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1], area_px=int(inside.sum()),
                    area_mm2=None, longest_diameter_px=float(2 * r + 1), longest_diameter_mm=None,
                    centroid=[float(cx), float(cy)], peak_probability=0.92, p_malignant=0.7, label="malignant")
    return ImageResult(path=image.path, laterality=image.laterality, view=image.view, rows=rows, columns=cols,
                       lesions=[lesion], case_score=0.7, model_version="t", device="CPU", seconds=0.1, spacing_mm=0.4,
                       spacing_known=False, probability=probability, geometry=geometry)


def hover(window, point: QPoint) -> None:
    """The mouse moves to ``point`` of the reading area, no button down (delivered at once, unlike QTest.mouseMove)."""
    viewport = window.viewer.canvas.viewport()
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(point), QPointF(viewport.mapToGlobal(point)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def move_lens(window, point: QPoint) -> None:
    """Move the mouse to ``point``: the lens comes up centred on it."""
    hover(window, point)
    lens = window.viewer.lens
    centre = lens.geometry().center()
    assert lens.isVisible() and abs(centre.x() - point.x()) <= 2 and abs(centre.y() - point.y()) <= 2


def tooltip_at(window, point: QPoint) -> None:
    viewport = window.viewer.canvas.viewport()
    QApplication.sendEvent(viewport, QHelpEvent(QEvent.Type.ToolTip, point, viewport.mapToGlobal(point)))


def test_the_prediction_tooltip_goes_with_the_overlay_and_never_covers_the_magnifier(qtbot, shown):
    window = shown
    viewer = window.viewer
    pane = viewer.panes[SLOTS_2UP[0]]
    rows, cols = pane.loaded.shape
    cx, cy = int(cols * 0.35), int(rows * 0.45)
    viewer.set_ai_result(prepare_ai_image(pane.loaded.indexed, disc_result(pane.loaded.indexed, (rows, cols), cx, cy, 12), 0.5))
    assert pane.prediction.outline.isVisible()
    key(qtbot, window, Qt.Key.Key_T)  # no truth outline over the disc: the tooltip is the prediction's
    point = on_screen(window, pane.frame.mapToScene(QPointF(cx + 0.5, cy + 0.5)))
    tooltip_at(window, point)
    assert QToolTip.isVisible() and QToolTip.text().startswith("AI prediction")
    key(qtbot, window, Qt.Key.Key_A)  # a shortcut: no key press reaches the tooltip
    assert not pane.prediction.outline.isVisible()
    qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=3000)  # left alone it stays up 10 s
    tooltip_at(window, point)  # the hidden outline no longer answers
    qtbot.wait(50)
    assert not QToolTip.isVisible()
    key(qtbot, window, Qt.Key.Key_A)
    tooltip_at(window, point)
    assert QToolTip.isVisible() and QToolTip.text().startswith("AI prediction")
    key(qtbot, window, Qt.Key.Key_Z)  # the lens comes on under the cursor: the tooltip makes way
    qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=3000)
    move_lens(window, point)
    tooltip_at(window, point)
    qtbot.wait(50)
    assert not QToolTip.isVisible()
    # after a zoomed, mirrored pan the lens still follows the cursor with the pixels under it, and the yellow outline
    zoom_until_narrower(qtbot, window, 0.5)
    drag(qtbot, window, viewer.panes[SLOTS_2UP[1]], -40)
    for target in (viewer.panes[SLOTS_2UP[1]], pane):
        point = on_screen(window, target.view.sceneBoundingRect().center()) + QPoint(7, -5)
        move_lens(window, point)  # the lens follows the cursor
        col, row = target.stored_pixel_at(viewer.canvas.mapToScene(point))
        near = target.loaded.mammogram.pixels[row - 1 : row + 2, col - 1 : col + 2].astype(np.int64)
        expected = set(target.image_item.lut[near - target.loaded.levels[0]].ravel().tolist())
        half = viewer.lens.pixels.shape[0] // 2
        assert int(viewer.lens.pixels[half, half]) in expected
    move_lens(window, on_screen(window, pane.frame.mapToScene(QPointF(cx + 12.5, cy + 0.5))))
    lens = viewer.lens.image.convertToFormat(QImage.Format.Format_RGB32)
    argb = np.frombuffer(lens.constBits(), np.uint32).reshape(lens.height(), lens.bytesPerLine() // 4)
    red, green, blue = (argb >> 16) & 255, (argb >> 8) & 255, argb & 255
    assert ((red > 200) & (green > 200) & (blue < 80)).sum() > 20  # the yellow outline through the lens


def test_the_status_bar_shows_one_window_that_of_the_image_under_the_cursor(qtbot, shown):
    window = shown
    viewer = window.viewer
    right, left = (viewer.panes[s] for s in SLOTS_2UP)
    viewport = viewer.canvas.viewport()
    pattern = re.compile(r"C -?\d+\s+W \d+")

    def windows_in_status_bar() -> list[str]:
        texts = [window.statusBar().currentMessage(), window.cursor_label.text(), window.window_label.text()]
        return [m for text in texts for m in pattern.findall(text)]

    for pane, other in ((left, right), (right, left)):
        hover(window, on_screen(window, pane.view.sceneBoundingRect().center()))
        assert viewer.hover_pane is pane
        key(qtbot, window, Qt.Key.Key_W)  # another preset, with the cursor on this image
        assert window.statusBar().currentMessage() == f"Window: {pane.window.name}"
        assert windows_in_status_bar() == pattern.findall(pane.window_text())
        assert window.window_label.text().startswith(f"{image_label(pane.loaded.indexed)}: ")
        if pattern.findall(pane.window_text()) != pattern.findall(other.window_text()):
            assert not set(pattern.findall(other.window_text())) & set(windows_in_status_bar())


# -- the heatmap zoomed out


@pytest.fixture
def big_image(tmp_path) -> IndexedImage:
    """A 2400 x 1500 right CC (chest wall on the file's left): at fit zoom 3-4 stored pixels make a screen pixel."""
    rows, cols = 2400, 1500
    yy, xx = np.mgrid[:rows, :cols]
    breast = (xx / 1300.0) ** 2 + ((yy - rows / 2) / 1100.0) ** 2 <= 1.0
    pixels = np.where(breast, 2600 + (yy % 97) * 3, 80).astype(np.uint16)
    path = make_dicom(tmp_path / "big.dcm", pixels, ImageLaterality="R", ViewPosition="CC")
    return IndexedImage(path=str(path), patient_id="P", laterality="R", view="CC", rows=rows, columns=cols)


def test_a_small_heatmap_peak_stays_visible_at_fit_zoom(qtbot, big_image):
    viewer = HangingView()
    viewer.resize(520, 720)
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitExposed(viewer)
    viewer.show_patient("P", [big_image])
    assert viewer.place(load_image(big_image))
    pane = viewer.panes[SLOTS_4UP[0]]
    # an eighth-resolution working grid with one peak of a single working pixel (8 x 8 stored pixels)
    ai = prepare_ai_image(big_image, disc_result(big_image, (2400, 1500), 90, 150, 0, scale=0.125), 0.5)
    assert viewer.set_ai_result(ai)
    viewer.set_prediction_visible(False)  # the heatmap alone
    viewer.fit()
    qtbot.wait(20)
    per_screen = pane.image_px_per_screen_px()
    assert 2.5 < per_screen < 8  # zoomed out: the peak covers about 8 / per_screen screen pixels across

    def grab() -> np.ndarray:
        image = viewer.canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
        argb = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.bytesPerLine() // 4)
        return np.stack([(argb >> s) & 255 for s in (16, 8, 0)], axis=-1).astype(int)

    def heat_change() -> np.ndarray:
        """How much the heatmap changes each screen pixel (the largest of the three channels)."""
        viewer.set_heatmap_visible(False)
        qtbot.wait(20)
        off = grab()
        viewer.set_heatmap_visible(True)
        qtbot.wait(20)
        return np.abs(grab() - off).max(axis=-1)

    at_fit = heat_change()
    # close up (1:1, centred on the peak) the peak covers 8 x 8 screen pixels at full strength: the reference
    assert viewer.center_on(big_image.path, (718, 1198, 730, 1210))
    qtbot.wait(20)
    assert pane.image_px_per_screen_px() == pytest.approx(1.0, rel=0.02)
    close = heat_change()
    assert pane.prediction.heat_radius == 0 and np.array_equal(pane.prediction.heatmap.image, ai.heat)  # as computed
    assert 40 <= int((close > 40).sum()) <= 100
    # at fit zoom the peak still covers a disc of HEAT_PEAK_RADIUS_PX screen pixels, in its own colour
    assert int((at_fit > 40).sum()) >= 0.6 * math.pi * HEAT_PEAK_RADIUS_PX**2
    assert at_fit.max() >= 0.9 * close.max()
