"""The main window driven like a reader drives it: open, worklist, hanging, window/level, overlays, keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

from model.data.display import render, window_lut
from model.data.masks import load_mask
from model.data.preprocess import chest_wall_side
from model.data.study_index import build_index
from tests.app.qt_helpers import open_root as _open_root

TIMEOUT_MS = 20_000


def open_root(qtbot, window, root):
    return _open_root(qtbot, window, root, TIMEOUT_MS)

from app.case_text import image_label, image_truth
from app.viewer.hanging import SLOTS_2UP, SLOTS_4UP, needs_mirror
from app.case_text import first_case_with_truth



def show_patient(qtbot, window, patient_id):
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        assert window.select_patient(patient_id)


def key(qtbot, window, k):
    """A key as the reader presses it: into the reading area, through the window's shortcuts."""
    qtbot.keyClick(window.viewer.canvas, k)


def pane_center(window, pane) -> QPoint:
    return window.viewer.canvas.mapFromScene(pane.view.sceneBoundingRect().center())


@pytest.fixture
def opened(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root)
    return window, index


def test_worklist_shows_the_index(opened):
    window, index = opened
    expected = build_index(index.root).patients()
    tree = window.worklist.tree
    listed = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert listed == list(expected) and len(listed) == 6
    for i, (patient_id, images) in enumerate(expected.items()):
        item = tree.topLevelItem(i)
        children = [(item.child(j).text(0), item.child(j).text(1)) for j in range(item.childCount())]
        assert children == [(image_label(im), image_truth(im)) for im in images]
    assert window.skipped.count == len(index.skipped)
    assert window.skipped.windowTitle() == f"Skipped files ({len(index.skipped)})"


def test_bad_files_are_listed_as_skipped_and_the_rest_loads(qtbot, window, demo_root, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    (root / "notes.dcm").write_text("this is not a DICOM file\n")
    a_dicom = next(root.rglob("*.dcm"))
    (root / "cut.dcm").write_bytes(a_dicom.read_bytes()[:200])
    index = open_root(qtbot, window, root)
    reasons = {s.path: s.reason for s in index.skipped}
    assert window.skipped.count == 2 and window.skipped.windowTitle() == "Skipped files (2)"
    table = window.skipped.table
    shown = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert set(shown) == {"notes.dcm", "cut.dcm"}
    assert shown["notes.dcm"] == reasons[str(root / "notes.dcm")] and shown["notes.dcm"]
    assert shown["cut.dcm"] == reasons[str(root / "cut.dcm")] and shown["cut.dcm"]
    assert len(window.worklist.patients) == 6
    assert not window.errors.messages  # bad files are listed, not shouted about


def test_cc_hanging_right_breast_left_chest_walls_in_the_middle(qtbot, opened):
    window, index = opened
    patient_id = next(iter(index.patients()))
    show_patient(qtbot, window, patient_id)
    viewer = window.viewer
    assert len(viewer.visible_panes()) == 2
    right, left = viewer.panes[SLOTS_2UP[0]], viewer.panes[SLOTS_2UP[1]]
    assert (right.loaded.indexed.laterality, right.loaded.indexed.view) == ("R", "CC")
    assert (left.loaded.indexed.laterality, left.loaded.indexed.view) == ("L", "CC")
    assert right.view.sceneBoundingRect().center().x() < left.view.sceneBoundingRect().center().x()
    for pane in (right, left):
        rows, cols = pane.loaded.shape
        side = chest_wall_side(pane.loaded.mammogram.pixels)
        chest, nipple = (0.5, cols - 0.5) if side == "left" else (cols - 0.5, 0.5)
        chest_x, nipple_x = pane.scene_x_of_column(chest), pane.scene_x_of_column(nipple)
        if pane is right:
            assert chest_x > nipple_x  # chest wall toward the screen's middle
        else:
            assert chest_x < nipple_x
        assert pane.mirrored_on_screen == needs_mirror(side, pane.slot)
    # What is painted agrees: the tissue (bright) is next to the middle, background at the outer edges.
    shot = window.viewer.canvas.grab().toImage().convertToFormat(window.viewer.canvas.grab().toImage().Format.Format_Grayscale8)
    pixels = np.frombuffer(shot.constBits(), np.uint8).reshape(shot.height(), shot.bytesPerLine())[:, : shot.width()]
    for pane, inner_is_right in ((right, True), (left, False)):
        rect = pane.view.sceneBoundingRect().toRect()
        strip = max(4, rect.width() // 10)
        region = pixels[rect.top() : rect.bottom(), rect.left() : rect.right()]
        inner = region[:, -strip:] if inner_is_right else region[:, :strip]
        outer = region[:, :strip] if inner_is_right else region[:, -strip:]
        assert inner.mean() > outer.mean() + 20


def test_panes_show_exactly_the_model_greyscale(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    pane = window.viewer.panes[SLOTS_2UP[0]]
    assert pane.level == 0  # a small image is shown at full resolution
    pane.image_item.render()
    qimage = pane.image_item.qimage
    shown = np.frombuffer(qimage.constBits(), np.uint8).reshape(qimage.height(), qimage.bytesPerLine())[:, : qimage.width()]
    expected = render(pane.loaded.mammogram, pane.window)
    assert shown.shape == expected.shape
    assert np.array_equal(shown, expected)


def test_four_up_on_m_with_linked_zoom(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    key(qtbot, window, Qt.Key.Key_M)
    qtbot.waitUntil(window.viewer.is_complete, timeout=TIMEOUT_MS)
    viewer = window.viewer
    assert viewer.four_up and len(viewer.visible_panes()) == 4
    assert [viewer.panes[s].loaded.indexed.view for s in SLOTS_4UP] == ["CC", "CC", "MLO", "MLO"]
    first, *others = [p.view for p in viewer.visible_panes()]
    first.scaleBy((0.5, 0.5))
    qtbot.waitUntil(lambda: all(np.allclose(o.viewRange(), first.viewRange(), atol=1.0) for o in others), timeout=2000)
    key(qtbot, window, Qt.Key.Key_M)
    assert not viewer.four_up and len(viewer.visible_panes()) == 2


def test_right_drag_changes_window_and_lut_and_i_inverts(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    panes = [window.viewer.panes[s] for s in SLOTS_2UP]
    before = [(p.window, p.image_item.lut.copy()) for p in panes]
    viewport = window.viewer.canvas.viewport()
    start = pane_center(window, panes[0])
    QTest.mousePress(viewport, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, start)
    for step in (5, 20, 60, 100):
        QTest.mouseMove(viewport, start + QPoint(step, step // 2))
    QTest.mouseRelease(viewport, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, start + QPoint(100, 50))
    for pane, (window0, lut0) in zip(panes, before):
        assert pane.window.width > window0.width  # dragged right: wider
        assert pane.window.center > window0.center  # dragged down: higher center
        assert not np.array_equal(pane.image_item.lut, lut0)
        assert np.array_equal(pane.image_item.lut, window_lut(pane.loaded.domain, pane.window))
    assert "C " in window.window_label.text() and "W " in window.window_label.text()
    normal = panes[0].image_item.lut.copy()
    key(qtbot, window, Qt.Key.Key_I)
    assert window.viewer.invert and window.actions.invert.isChecked()
    assert np.array_equal(panes[0].image_item.lut, window_lut(panes[0].loaded.domain, panes[0].window, invert=True))
    assert normal[0] != panes[0].image_item.lut[0]
    key(qtbot, window, Qt.Key.Key_I)
    assert np.array_equal(panes[0].image_item.lut, normal)


def test_presets_cycle_on_w(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    pane = window.viewer.panes[SLOTS_2UP[0]]
    names = [pane.window.name]
    for _ in range(len(pane.loaded.windows)):
        key(qtbot, window, Qt.Key.Key_W)
        names.append(pane.window.name)
    assert names[0] == names[-1] and len(set(names)) == len(pane.loaded.windows) >= 2
    key(qtbot, window, Qt.Key.Key_2)
    assert pane.window == pane.loaded.windows[1]


def test_truth_outlines_are_red_on_the_lesion_and_t_toggles_them(qtbot, opened):
    window, index = opened
    patient_id = first_case_with_truth(index)
    show_patient(qtbot, window, patient_id)
    panes = [p for p in window.viewer.visible_panes() if p.truth_items]
    assert panes, "the first case with ground truth has a drawn outline"
    pane = panes[0]
    item = pane.truth_items[0]
    pen = item.pen()
    assert pen.color() == QColor(255, 0, 0) and pen.isCosmetic() and pen.widthF() == 2.0
    assert item.isVisible() and item.parentItem() is pane.frame
    ys, xs = np.nonzero(load_mask(pane.loaded.truth[0].abnormality.mask_path))
    box = item.path().boundingRect()
    assert box.left() == pytest.approx(xs.min() + 0.5, abs=1.5) and box.right() == pytest.approx(xs.max() + 0.5, abs=1.5)
    assert box.top() == pytest.approx(ys.min() + 0.5, abs=1.5) and box.bottom() == pytest.approx(ys.max() + 0.5, abs=1.5)
    assert "ground truth" in window.viewer.legend.text() and window.viewer.legend.isVisible()
    key(qtbot, window, Qt.Key.Key_T)
    assert not any(i.isVisible() for p in window.viewer.panes.values() for i in p.truth_items)
    assert "hidden" in window.viewer.legend.text()
    key(qtbot, window, Qt.Key.Key_T)
    assert item.isVisible()


def test_search_filters_patients_and_n_p_step_through_them(qtbot, opened):
    window, index = opened
    patients = list(index.patients())
    target = patients[2]
    qtbot.keyClicks(window.worklist.search, target[-3:])
    assert window.worklist.visible_patients() == [target]
    window.worklist.search.clear()
    assert window.worklist.visible_patients() == patients
    show_patient(qtbot, window, patients[0])
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        key(qtbot, window, Qt.Key.Key_N)
    assert window.viewer.patient_id == patients[1]
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        key(qtbot, window, Qt.Key.Key_P)
    assert window.viewer.patient_id == patients[0]


def test_status_bar_shows_pixel_value_and_position(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    pane = window.viewer.panes[SLOTS_2UP[1]]
    point = pane_center(window, pane)
    QTest.mouseMove(window.viewer.canvas.viewport(), point)
    qtbot.waitUntil(lambda: "value" in window.cursor_label.text(), timeout=2000)
    col, row = pane.stored_pixel_at(window.viewer.canvas.mapToScene(point))
    text = window.cursor_label.text()
    assert f"x {col}  y {row} px" in text
    assert f"value {pane.loaded.value_at(col, row):g}" in text
    assert "spacing unknown" in text if pane.loaded.spacing_mm is None else "mm" in text


def test_f1_lists_every_shortcut(qtbot, window):
    key(qtbot, window, Qt.Key.Key_F1)
    dialog = window._shortcuts_dialog
    assert dialog.isVisible() and not dialog.isModal()
    rows = {action: keys for _, action, keys in dialog.rows}
    assert rows["Next patient"].startswith("N") and rows["Invert"] == "I" and rows["Ground-truth outlines"] == "T"
    assert rows["4-up (CC and MLO)"] == "M" and rows["Keyboard shortcuts"] == "F1"
    assert dialog.keys_fit(), "every key and action is shown whole, no column cut off"


def test_enter_in_the_worklist_search_opens_the_match_and_leaves_the_keys_to_the_reader(qtbot, opened):
    window, index = opened
    patients = list(index.patients())
    target = patients[2]
    search = window.worklist.search
    key(qtbot, window, Qt.Key.Key_F)  # no-op key; then Ctrl+F as the reader does
    qtbot.keyClick(window.viewer.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert search.hasFocus()
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        qtbot.keyClicks(search, target[-3:])  # a part that only this patient has
        assert window.worklist.visible_patients() == [target]
        qtbot.keyClick(search, Qt.Key.Key_Return)
    assert window.viewer.patient_id == target and not search.hasFocus()
    # an exact ID among several partial matches opens that one
    search.setFocus()
    search.setText(patients[0])
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        qtbot.keyClick(search, Qt.Key.Key_Return)
    assert window.viewer.patient_id == patients[0]
    # several matches and none exact: nothing opens, the focus goes to the list for the arrow keys
    search.setFocus()
    search.setText("P_")
    qtbot.keyClick(search, Qt.Key.Key_Return)
    assert window.viewer.patient_id == patients[0] and window.worklist.tree.hasFocus()


def test_the_review_export_is_offered_in_the_documents_folder(qtbot, window, monkeypatch, tmp_path):
    from PySide6.QtCore import QStandardPaths
    from PySide6.QtWidgets import QFileDialog

    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    offered = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *args, **kw: (offered.append(args[2]), ("", ""))[1]))
    monkeypatch.chdir(tmp_path)  # the folder the app was started from is not where exports go
    window.ask_export_reviews()
    (path,) = offered
    assert str(tmp_path) not in path and path.endswith(".csv")
    assert path.startswith(documents if documents and Path(documents).is_dir() else str(Path.home()))


def test_blinded_findings_have_their_text_at_the_top_not_a_gap(qtbot, window):
    findings = window.findings
    findings.set_case("P_1", [])
    findings.set_blinded(True)
    findings.resize(440, 600)
    qtbot.wait(50)
    image = findings.widget().grab().toImage()
    background = image.pixelColor(image.width() - 2, image.height() - 2)
    first_text_row = next(y for y in range(image.height())
                          if any(image.pixelColor(x, y) != background for x in range(0, image.width(), 2)))
    assert first_text_row < 30, f"the blinded notice starts {first_text_row} px down"


def test_an_unreadable_folder_gives_one_line_not_a_traceback(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.indexFailed, timeout=TIMEOUT_MS):
        window.open_path(tmp_path / "missing")
    message = window.errors.messages[-1]
    assert "does not exist" in message and "\n" not in message and "Traceback" not in message
    assert window.statusBar().currentMessage() == message


def test_big_images_hand_only_the_visible_part_to_the_image_item(qtbot, opened, monkeypatch):
    import app.viewer.image_pane

    monkeypatch.setattr(app.viewer.image_pane, "CROP_ABOVE_PIXELS", 10_000)  # make the small demo "big"
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    key(qtbot, window, Qt.Key.Key_0)  # 1:1 pixels
    assert window.viewer.visible_panes()[0].image_px_per_screen_px() == pytest.approx(1.0, rel=0.02)
    for _ in range(6):
        key(qtbot, window, Qt.Key.Key_Plus)  # zoom in until only part of the image is on screen
    full = window.viewer.visible_panes()[0].loaded.mammogram.pixels.size
    # The ViewBox applies a new range when it next paints; the panes re-crop then.
    qtbot.waitUntil(lambda: all(p.displayed_array().size < full for p in window.viewer.visible_panes()), timeout=2000)
    for pane in window.viewer.visible_panes():
        assert pane.image_px_per_screen_px() == pytest.approx(1.25**-6, rel=0.02)
        assert pane.level == 0 and pane.crop is not None
        r0, r1, c0, c1 = pane.crop
        shown = pane.displayed_array()
        assert shown.shape == (r1 - r0, c1 - c0) and shown.size < pane.loaded.mammogram.pixels.size
        assert np.array_equal(shown, pane.loaded.mammogram.pixels[r0:r1, c0:c1])
        corner = pane.frame.mapFromItem(pane.image_item, QPointF(0, 0))  # item pixel (0, 0) sits on stored (c0, r0)
        assert (corner.x(), corner.y()) == pytest.approx((c0, r0))
        seen = pane.frame.mapRectFromParent(pane.view.viewRect())
        assert seen.left() >= c0 - 1 or c0 == 0
        assert seen.right() <= c1 + 1 or c1 == pane.loaded.shape[1]
    pane = window.viewer.visible_panes()[0]
    before = pane.crop
    pane.view.translateBy((0, 150))  # pan down past the crop
    qtbot.waitUntil(lambda: pane.crop != before, timeout=2000)
    assert pane.crop[0] > before[0]


def test_truth_masks_with_problems_are_not_drawn_but_listed(qtbot, opened):
    window, index = opened
    flagged = [(i, a) for i in index.images for a in i.abnormalities if a.problem]
    assert flagged, "the demo has a mask whose size differs from its image"
    image, abnormality = flagged[0]
    key(qtbot, window, Qt.Key.Key_M)
    show_patient(qtbot, window, image.patient_id)
    pane = next(p for p in window.viewer.visible_panes() if p.loaded and p.loaded.indexed.path == image.path)
    assert all(t.abnormality.id != abnormality.id for t in pane.loaded.truth)
    assert "not drawn" in pane.label
    assert abnormality.problem in pane.image_item.toolTip()
    assert abnormality.problem in window.statusBar().currentMessage()


def test_an_image_that_fails_to_load_shows_its_reason_in_its_pane(qtbot, window, demo_root, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    index = build_index(root)
    patient_id, images = next(iter(index.patients().items()))
    victim = next(i for i in images if (i.laterality, i.view) == ("L", "CC"))
    data = open(victim.path, "rb").read()
    open_root(qtbot, window, root)
    # cut after indexing (the index checks that the pixel data is all there, so only loading can tell now)
    open(victim.path, "wb").write(data[: len(data) - 5000])
    assert window.skipped.count == 0
    show_patient(qtbot, window, patient_id)
    pane = window.viewer.panes[SLOTS_2UP[1]]
    assert pane.loaded is None and pane.note.startswith("L CC: ")
    message = window.errors.messages[-1]
    assert patient_id in message and "\n" not in message and "Traceback" not in message
    assert window.viewer.panes[SLOTS_2UP[0]].loaded is not None  # the other side still shows


def test_choosing_an_mlo_in_the_worklist_opens_the_4up(qtbot, opened):
    window, index = opened
    patient_id, images = next(iter(index.patients().items()))
    item = window.worklist._items[patient_id]
    mlo = next(item.child(j) for j in range(item.childCount()) if item.child(j).text(0).endswith("MLO"))
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        window.worklist.tree.setCurrentItem(mlo)
    assert window.viewer.four_up and window.actions.four_up.isChecked()


def test_opening_one_file_hangs_it_by_its_header(qtbot, window, tmp_path):
    from tests.conftest import make_dicom

    rows, cols = np.mgrid[0:300, 0:200]
    pixels = np.where((rows - 150) ** 2 + (cols - 199) ** 2 < 140**2, 3000, 0).astype(np.uint16)  # against the right edge
    path = make_dicom(tmp_path / "one.dcm", pixels, PatientID="SOLO", ImageLaterality="L", ViewPosition="CC")
    open_root(qtbot, window, path)
    assert list(window.worklist.patients) and len(window.worklist.patients[next(iter(window.worklist.patients))]) == 1
    show_patient(qtbot, window, next(iter(window.worklist.patients)))
    right, left = (window.viewer.panes[s] for s in SLOTS_2UP)
    assert right.loaded is None and right.note == "no R CC"
    assert left.loaded is not None and left.loaded.chest_wall == "right"
    assert left.mirrored_on_screen  # the left breast's chest wall must face the middle: the screen's left
    assert left.scene_x_of_column(199.5) < left.scene_x_of_column(0.5)


def test_s_switches_the_voi_function_to_sigmoid_and_back(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    pane = window.viewer.panes[SLOTS_2UP[0]]
    linear = pane.window
    assert linear.function == "LINEAR"
    key(qtbot, window, Qt.Key.Key_S)
    assert window.actions.sigmoid.isChecked()
    assert pane.window.function == "SIGMOID" and (pane.window.center, pane.window.width) == (linear.center, linear.width)
    expected = window_lut(pane.loaded.domain, pane.window)
    assert np.array_equal(pane.image_item.lut, expected)
    assert not np.array_equal(expected, window_lut(pane.loaded.domain, linear))
    assert "SIGMOID" in window.window_label.text()
    key(qtbot, window, Qt.Key.Key_W)  # another preset keeps the sigmoid
    assert pane.window.function == "SIGMOID" and pane.window.name != linear.name
    key(qtbot, window, Qt.Key.Key_S)
    assert pane.window.function == "LINEAR"
    assert np.array_equal(pane.image_item.lut, window_lut(pane.loaded.domain, pane.window))


def test_z_magnifier_shows_the_full_resolution_pixels_under_the_cursor(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, next(iter(index.patients())))
    window.viewer.zoom(3.0)  # zoomed out: the small demo images then show fewer pixels than they store, as full size ones do
    lens = window.viewer.lens
    key(qtbot, window, Qt.Key.Key_Z)
    for slot in SLOTS_2UP:  # one mirrored pane and one not
        pane = window.viewer.panes[slot]
        point = pane_center(window, pane) + QPoint(1, 0)
        window.viewer._on_mouse_moved(window.viewer.canvas.mapToScene(point))  # what the scene's mouse-move signal calls
        assert lens.isVisible()
        assert window.actions.lens.isChecked()
        assert pane.image_px_per_screen_px() > 2  # the screen shows fewer pixels than stored
        col, row = pane.stored_pixel_at(window.viewer.canvas.mapToScene(point))
        side = lens.pixels.shape[0]
        half = side // 2
        stored = pane.loaded.mammogram.pixels[row - half: row + half, col - half: col + half]
        lut = window_lut(pane.loaded.domain, pane.window)
        expected = lut[stored.astype(np.int64) - pane.loaded.domain[0]]
        if pane.mirrored_on_screen:
            expected = expected[:, ::-1]
        assert expected.shape == lens.pixels.shape
        assert np.array_equal(lens.pixels, expected)  # 1:1 stored pixels, through the pane's LUT, as mirrored on screen
        centre = lens.geometry().center()
        assert abs(centre.x() - point.x()) <= 2 and abs(centre.y() - point.y()) <= 2
    key(qtbot, window, Qt.Key.Key_Z)
    assert not lens.isVisible()


def test_the_magnifier_draws_the_visible_truth_outline_where_the_lesion_is(qtbot, opened):
    window, index = opened
    show_patient(qtbot, window, first_case_with_truth(index))
    pane = next(p for p in window.viewer.visible_panes() if p.truth_items)
    box = pane.truth_items[0].path().boundingRect()
    key(qtbot, window, Qt.Key.Key_Z)

    def red_pixels() -> int:
        window.viewer._on_mouse_moved(pane.frame.mapToScene(box.center()))
        image = window.viewer.lens.image.convertToFormat(QImage.Format.Format_RGB888)
        rgb = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[:, : 3 * image.width()]
        rgb = rgb.reshape(image.height(), image.width(), 3).astype(int)
        return int(((rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)).sum())

    assert red_pixels() > 50  # the outline, drawn around the lens centre
    key(qtbot, window, Qt.Key.Key_T)  # truth hidden on screen: hidden in the lens too
    assert red_pixels() == 0


def test_dropping_several_files_opens_them_together(qtbot, window, tmp_path):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    from tests.conftest import make_dicom

    pixels = (np.arange(120 * 80, dtype=np.uint16).reshape(120, 80) % 4000)
    files = [make_dicom(tmp_path / f"{n}.dcm", pixels, PatientID=pid, ImageLaterality=side, ViewPosition="CC")
             for n, (pid, side) in enumerate([("DROP1", "L"), ("DROP2", "R")])]
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not a mammogram")
    make_dicom(tmp_path / "other.dcm", pixels, PatientID="NOT_DROPPED")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in [*files, bad]])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.indexReady, timeout=TIMEOUT_MS):
        window.dropEvent(event)
    assert sorted(window.worklist.patients) == ["DROP1", "DROP2"]
    assert window.skipped.count == 1 and window.skipped.entries[0].path == str(bad)
    assert "3 files" in window.windowTitle()
    assert window.settings.recent() == []  # loose files are not a folder to reopen
    assert window.skipped.table.item(0, 0).text() == "bad.dcm"


def test_a_bad_file_opened_on_its_own_is_listed_by_its_name(qtbot, window, tmp_path):
    bad = tmp_path / "scan 0001.dcm"
    bad.write_bytes(b"not a mammogram")
    open_root(qtbot, window, bad)
    assert window.skipped.count == 1 and window.skipped.table.item(0, 0).text() == "scan 0001.dcm"
    assert window.skipped.table.item(0, 0).toolTip() == str(bad)
