"""The AI in the reader's window: background inference, overlays, ROI mode, findings, worklist score, cache."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, QPointF, Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from model.data.masks import load_mask
from model.infer.compare import dice, iou
from model.data.study_index import build_index
from tests.app.qt_helpers import TIMEOUT_MS, open_root, show_with_ai

from app.case_text import percent
from app.viewer.hanging import SLOTS_2UP
from app.case_text import first_case_with_truth
from app.main_window import MainWindow

REPO = Path(__file__).resolve().parents[3]


def make_window(qtbot, model_path, size=(1400, 900)) -> MainWindow:
    w = MainWindow(model_path=model_path)
    w.resize(*size)
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def window(qtbot, model_file, cache_dir):
    w = make_window(qtbot, model_file)
    qtbot.waitUntil(lambda: w.ai.predictor is not None, timeout=TIMEOUT_MS)
    yield w
    w.close()


def key(qtbot, window, k):
    qtbot.keyClick(window.viewer.canvas, k)


def truth_union(image, shape):
    union = np.zeros(shape, bool)
    for a in image.abnormalities:
        if a.mask_path and not a.problem:
            union |= load_mask(a.mask_path, shape=shape)
    return union


@pytest.fixture
def shown(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root)
    patient_id = first_case_with_truth(index)
    show_with_ai(qtbot, window, patient_id)
    return window, index, patient_id


def test_results_fill_overlays_findings_worklist_and_status(shown):
    window, index, patient_id = shown
    viewer, findings = window.viewer, window.findings
    cc = viewer.cc_images()
    assert len(cc) == 2 and set(viewer.ai) == {i.path for i in cc}
    lesions_total = 0
    for image in cc:
        ai = viewer.ai[image.path]
        pane = viewer.pane_of(image.path)
        assert pane.prediction.ai is ai
        threshold = window.ai.predictor.model.threshold
        mask = ai.result.lesion_mask(threshold)  # the listed lesions: specks are neither listed nor drawn
        assert mask.any(), "the disc model marks something on the demo"
        assert pane.prediction.fill.isVisible() and pane.prediction.outline.isVisible()
        assert not pane.prediction.heatmap.isVisible()  # the heatmap waits for H
        assert ai.mask_pixels == int(mask.sum()) <= int(ai.result.mask(threshold).sum())
        # The image row's Dice/IoU are those of the shown mask against the truth masks.
        union = truth_union(image, mask.shape)
        row = findings.image_row(image.path)
        assert f"Dice {dice(mask, union):.2f}" in row.text(0) and f"IoU {iou(mask, union):.2f}" in row.text(0)
        rows = [r for r in findings.lesion_rows(image.path) if r.text(0).startswith("L")]
        assert len(rows) == len(ai.result.lesions)
        lesions_total += len(rows)
        truth_rows = {r.text(0): r for r in findings.lesion_rows(image.path) if r.text(0).startswith("T")}
        assert list(truth_rows) == [f"T{a.id}" for a in sorted(image.abnormalities, key=lambda a: a.id)]
        for a in image.abnormalities:
            assert a.type.startswith(truth_rows[f"T{a.id}"].text(1).split()[-1].rstrip("."))
        for n, (row, lesion) in enumerate(zip(rows, ai.result.lesions), 1):
            assert row.text(1) == f"{percent(lesion.p_malignant)} {lesion.label}"
            assert row.text(2) == "false positive" or row.text(2).startswith("hit T")
            # hit: the lesion's box holds predicted pixels that are truth pixels, and the truth row names it back
            x0, y0, x1, y1 = lesion.bbox
            overlaps = bool((mask[y0:y1, x0:x1] & union[y0:y1, x0:x1]).any())
            if row.text(2).startswith("hit"):
                assert overlaps
                for name in row.text(2)[4:].split(", "):
                    assert f"L{n}" in truth_rows[name].text(2)
            # the demo has no pixel spacing: mm at the model's assumed spacing, marked
            assert row.text(3).endswith("mm²*") and row.text(4).endswith("mm*")
            assert ai.result.lesions[n - 1].area_px * ai.result.spacing_mm ** 2 == pytest.approx(
                float(row.text(3).split()[0]), abs=0.5)
        for truth_row in truth_rows.values():
            assert truth_row.text(2) == "missed" or truth_row.text(2).startswith("found by L")
    assert "assumed 0.050 mm pixel spacing" in findings.summary.text()
    assert findings.tree.horizontalScrollBar().maximum() == 0, "every column fits the dock: no sideways scrolling"
    assert lesions_total > 0
    score = max(viewer.ai[i.path].result.case_score for i in cc)
    assert findings.score() == pytest.approx(score)
    assert "Case score <b" in findings.summary.text() and percent(score) in findings.summary.text()
    assert window.worklist.ai_score(patient_id) == pytest.approx(score)
    item = window.worklist._items[patient_id]
    assert item.text(2) == percent(score)
    for other, images in index.patients().items():  # blank until computed (the next case may be prefetched)
        if other != patient_id and not any(window.ai.cached(i.path) for i in images):
            assert window.worklist._items[other].text(2) == ""
    assert "model test-discs" in window.ai_label.text() and window.ai_label.text().startswith(("CPU", "GPU"))
    assert "AI prediction" in viewer.legend.text() and "ground truth" in viewer.legend.text()
    assert not window.errors.messages


def test_keys_toggle_prediction_heatmap_and_change_fill_opacity(qtbot, shown):
    window, _, _ = shown
    layers = [window.viewer.pane_of(i.path).prediction for i in window.viewer.cc_images()]
    key(qtbot, window, Qt.Key.Key_A)
    assert not window.actions.prediction.isChecked()
    assert not any(l.fill.isVisible() or l.outline.isVisible() for l in layers)
    assert "hidden (A)" in window.viewer.legend.text()
    key(qtbot, window, Qt.Key.Key_A)
    assert all(l.fill.isVisible() and l.outline.isVisible() for l in layers)
    key(qtbot, window, Qt.Key.Key_H)
    assert window.actions.heatmap.isChecked()
    for layer in layers:
        assert layer.heatmap.isVisible() and layer.heatmap.image is not None
        assert layer.heatmap.opacity() < 1.0 and layer.heatmap.lut is not None  # see-through, coloured
        assert layer.heatmap.zValue() < layer.fill.zValue()
    assert "probability" in window.viewer.legend.text()
    key(qtbot, window, Qt.Key.Key_H)
    assert not any(l.heatmap.isVisible() for l in layers)
    before = layers[0].fill.opacity()
    key(qtbot, window, Qt.Key.Key_BracketRight)
    assert layers[0].fill.opacity() == pytest.approx(before + 0.1)
    key(qtbot, window, Qt.Key.Key_BracketLeft)
    key(qtbot, window, Qt.Key.Key_BracketLeft)
    assert all(l.fill.opacity() == pytest.approx(before - 0.1) for l in layers)
    for _ in range(12):
        key(qtbot, window, Qt.Key.Key_BracketLeft)
    assert layers[0].fill.opacity() == 0.0  # clamped, never negative
    key(qtbot, window, Qt.Key.Key_T)  # truth still toggles on its own
    assert not any(i.isVisible() for p in window.viewer.panes.values() for i in p.truth_items)
    assert all(l.outline.isVisible() for l in layers)


def test_overlays_sit_on_the_image_pixels_in_mirrored_and_unmirrored_panes(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root)
    for patient_id in index.patients():  # a case that hangs one view as stored and mirrors the other
        show_with_ai(qtbot, window, patient_id)
        mirrored = {window.viewer.panes[slot].mirrored_on_screen for slot in SLOTS_2UP}
        if mirrored == {True, False}:
            break
    assert mirrored == {True, False}, "the demo has a case with a mirrored and an unmirrored CC"
    for slot in SLOTS_2UP:
        pane = window.viewer.panes[slot]
        ai = pane.prediction.ai
        assert pane.level == 0 and pane.crop is None  # image item pixel (c, r) is stored pixel (c, r)
        mask = ai.result.lesion_mask(ai.threshold)  # what is drawn
        rows, cols = np.nonzero(mask)
        r, c = int(rows[len(rows) // 2]), int(cols[len(cols) // 2])
        x0, y0 = ai.fill_origin
        fill = pane.prediction.fill
        assert fill.image[r - y0, c - x0, 3] == 255  # the fill holds the lesion pixel...
        on_fill = fill.mapToScene(QPointF(c - x0 + 0.5, r - y0 + 0.5))
        on_image = pane.image_item.mapToScene(QPointF(c + 0.5, r + 0.5))
        assert (on_fill.x(), on_fill.y()) == pytest.approx((on_image.x(), on_image.y()), abs=1e-6)  # ...where the image has it
        # the heatmap: working pixel (u, v) lands where the geometry says it comes from
        geometry = ai.result.geometry
        v, u = np.unravel_index(int(np.argmax(ai.result.probability)), ai.result.probability.shape)
        column = (ai.heat.shape[1] - 1 - u) if geometry.flipped else u
        on_heat = pane.prediction.heatmap.mapToScene(QPointF(column + 0.5, v + 0.5))
        x, y = geometry.point_to_original(float(u), float(v))
        expected = pane.image_item.mapToScene(QPointF(x + 0.5, y + 0.5))
        tolerance = 1.0 / geometry.scale * abs(pane.image_item.mapToScene(QPointF(1, 0)).x() - pane.image_item.mapToScene(QPointF(0, 0)).x())
        assert abs(on_heat.x() - expected.x()) <= tolerance and abs(on_heat.y() - expected.y()) <= tolerance
        # and on screen: the yellow outline's box is the mask's box
        box = pane.prediction.outline.path().boundingRect()
        assert box.left() == pytest.approx(cols.min() + 0.5, abs=1.5) and box.right() == pytest.approx(cols.max() + 0.5, abs=1.5)


def test_reopening_a_case_takes_results_from_memory_then_from_the_disk_cache(qtbot, shown, model_file):
    window, index, patient_id = shown
    paths = [i.path for i in window.viewer.cc_images()]
    assert sorted(window.ai.inferred[:2]) == sorted(paths)  # both CC views computed (nothing cached in this folder)
    other = next(p for p in index.patients() if p != patient_id)
    show_with_ai(qtbot, window, other)
    started = time.perf_counter()
    show_with_ai(qtbot, window, patient_id)
    assert time.perf_counter() - started < 2.0
    assert all(window.ai.inferred.count(p) == 1 for p in paths)  # back to the first case: no new inference
    assert set(window.viewer.ai) == set(paths)
    # A new session (new window, same cache folder): results come from the disk cache.
    fresh = make_window(qtbot, model_file)
    try:
        open_root(qtbot, fresh, index.root)
        show_with_ai(qtbot, fresh, patient_id)
        results = [fresh.viewer.ai[p].result for p in paths]
        assert all(r.from_cache for r in results)
        assert not set(paths) & set(fresh.ai.inferred)
        assert "from the cache" in fresh.ai_state_label.text()
        assert fresh.worklist._items[patient_id].text(2) == window.worklist._items[patient_id].text(2)
    finally:
        fresh.close()


def test_the_next_case_is_prefetched_and_n_opens_it_with_its_marks(qtbot, shown):
    window, index, patient_id = shown
    patients = list(index.patients())
    next_id = patients[patients.index(patient_id) + 1]
    next_paths = [i.path for i in window.worklist.patients[next_id] if i.view == "CC"]
    qtbot.waitUntil(lambda: all(window.ai.cached(p) for p in next_paths), timeout=TIMEOUT_MS)
    assert window.viewer.patient_id == patient_id  # prefetched in the background, not shown
    assert window.worklist._items[next_id].text(2) != ""  # its score is in the worklist already
    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS, check_params_cb=lambda pid: pid == next_id):
        key(qtbot, window, Qt.Key.Key_N)
    assert set(window.viewer.ai) == set(next_paths)
    assert all(window.ai.inferred.count(p) == 1 for p in next_paths)


def test_a_newer_case_cancels_the_running_inference(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root)
    first, second = list(index.patients())[:2]
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        window.select_patient(first)
    qtbot.waitUntil(lambda: window.ai._current is not None and window.ai._current.kind == "case", timeout=TIMEOUT_MS)
    running = window.ai._current
    assert running.patient_id == first
    show_with_ai(qtbot, window, second)
    assert running.worker.is_cancelled()
    second_paths = {i.path for i in window.viewer.cc_images()}
    assert set(window.viewer.ai) == second_paths  # nothing of the first case is drawn on the second
    assert {r.path for r in window.findings.results.values()} == second_paths
    first_paths = [i.path for i in window.worklist.patients[first] if i.view == "CC"]
    assert sum(window.ai.inferred.count(p) for p in first_paths) <= 2


def test_event_loop_stays_responsive_during_inference(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root)
    patients = list(index.patients())[:3]
    gaps: list[tuple[int, bool]] = []  # (ms since the previous tick, was the network running)
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: gaps.append((clock.restart(), window.ai._current is not None)))
    clock.start()
    timer.start()
    started = time.perf_counter()
    try:
        for patient_id in patients:
            show_with_ai(qtbot, window, patient_id)
    finally:
        timer.stop()
    seconds = time.perf_counter() - started
    shown_paths = [i.path for p in patients for i in window.worklist.patients[p] if i.view == "CC"]
    assert all(window.ai.inferred.count(p) == 1 for p in shown_paths)  # real inferences on every CC view, no cache hit
    during = [gap for gap, busy in gaps[1:] if busy]
    assert len(during) >= 10, "the timer ticked while the network ran"
    worst = max(gap for gap, _ in gaps[1:])
    print(f"\nevent loop over {seconds:.2f} s ({len(patients)} cases shown, {window.ai.inferences} inferences): "
          f"{len(gaps)} ticks, {len(during)} during inference; max gap {worst} ms "
          f"(during inference {max(during)} ms), median {float(np.median([g for g, _ in gaps])):.0f} ms")
    assert worst < 200


def test_roi_click_runs_predict_roi_at_the_clicked_original_pixel(qtbot, shown, monkeypatch):
    window, _, _ = shown
    predictor = window.ai.predictor
    calls = []
    real = predictor.predict_roi

    def spy(image, x, y):
        calls.append((str(image), x, y))
        return real(image, x, y)

    monkeypatch.setattr(predictor, "predict_roi", spy)
    score = window.findings.score()
    key(qtbot, window, Qt.Key.Key_R)
    assert window.viewer.roi_mode and "ROI mode" in window.ai_state_label.text()
    viewport = window.viewer.canvas.viewport()
    for slot in SLOTS_2UP:
        pane = window.viewer.panes[slot]
        rows, cols = pane.loaded.shape
        col, row = int(cols * 0.3), int(rows * 0.55)  # not symmetric: a mirror mistake would click elsewhere
        scene = pane.frame.mapToScene(QPointF(col + 0.5, row + 0.5))
        point = window.viewer.canvas.mapFromScene(scene)
        # the screen pixel may hold a few stored pixels: expect what the pane reports under that point
        expected = pane.stored_pixel_at(window.viewer.canvas.mapToScene(point))
        assert abs(expected[0] - col) <= 2 and abs(expected[1] - row) <= 2
        count = len(calls)
        QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
        qtbot.waitUntil(lambda: window.viewer.ai[pane.loaded.indexed.path].is_roi, timeout=TIMEOUT_MS)
        assert len(calls) == count + 1
        assert calls[-1] == (pane.loaded.indexed.path, float(expected[0]), float(expected[1]))
        ai = window.viewer.ai[pane.loaded.indexed.path]
        assert ai.roi_point == (float(expected[0]), float(expected[1]))
        assert pane.prediction.ai is ai and pane.prediction.roi_marker.isVisible() and pane.prediction.roi_box.isVisible()
        assert pane.prediction.roi_box.rect().center() == QPointF(expected[0] + 0.5, expected[1] + 0.5)
        # nothing is predicted outside the tile (give or take a working pixel of resampling)
        x, y, w, h = ai.roi_rect
        m = int(np.ceil(1 / ai.result.geometry.scale)) + 1
        outside = ai.result.probability_original().copy()
        outside[max(0, int(y) - m) : int(np.ceil(y + h)) + m, max(0, int(x) - m) : int(np.ceil(x + w)) + m] = 0
        assert not outside.any()
        assert w < pane.loaded.shape[1] + 2 * m or h < pane.loaded.shape[0] + 2 * m  # and the tile is not the whole image
        assert "ROI at" in window.findings.image_row(pane.loaded.indexed.path).text(0)
    assert "ROI at" in window.ai_state_label.text()
    assert window.findings.score() == score  # the case score stays the whole-view one
    key(qtbot, window, Qt.Key.Key_Escape)  # leaves ROI mode: the whole-view results come back
    assert not window.viewer.roi_mode and not window.actions.roi.isChecked()
    assert not any(a.is_roi for a in window.viewer.ai.values())
    assert "ROI mode" not in window.ai_state_label.text() and "ROI" not in window.findings.summary.text()
    assert not any("ROI" in window.findings.image_row(i.path).text(0) for i in window.viewer.cc_images())
    count = len(calls)
    pane = window.viewer.panes[SLOTS_2UP[0]]
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     window.viewer.canvas.mapFromScene(pane.view.sceneBoundingRect().center()))
    qtbot.wait(200)
    assert len(calls) == count  # out of ROI mode a click does nothing


def test_clicking_a_finding_centres_the_panes_on_it(qtbot, shown):
    window, _, _ = shown
    rows = window.findings.lesion_rows()
    assert rows
    for row in rows[:2]:
        path, box = row.data(0, Qt.ItemDataRole.UserRole), row.data(0, Qt.ItemDataRole.UserRole + 1)
        pane = window.viewer.pane_of(path)
        before = pane.view.viewRect()
        rect = window.findings.tree.visualItemRect(row)
        QTest.mouseClick(window.findings.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, rect.center())
        assert window.findings.tree.currentItem() is row
        x0, y0, x1, y1 = box
        target = pane.view_point_of_pixel((x0 + x1) / 2, (y0 + y1) / 2)
        center = pane.view.viewRect().center()
        assert (center.x(), center.y()) == pytest.approx((target.x(), target.y()), abs=1)
        after = pane.view.viewRect()
        assert after.width() <= before.width() + 1e-6  # zoomed in (or kept), never out
        assert after.width() >= pane.view.width() - 1  # but not past 1:1 pixels

        def lesion_mid_screen() -> bool:  # the ViewBox applies a new range when it next paints
            on_screen = pane.frame.mapToScene(QPointF((x0 + x1) / 2, (y0 + y1) / 2))
            middle = pane.view.sceneBoundingRect().center()
            return abs(on_screen.x() - middle.x()) < 3 and abs(on_screen.y() - middle.y()) < 3

        qtbot.waitUntil(lesion_mid_screen, timeout=2000)


def test_without_a_model_the_status_says_so_and_cases_still_show(qtbot, demo_root, cache_dir, monkeypatch, tmp_path):
    import model.nn.weights

    monkeypatch.delenv("BCIR_MODEL", raising=False)
    monkeypatch.setattr(model.nn.weights, "BUNDLED_DIR", tmp_path / "no-models")
    window = make_window(qtbot, None)
    try:
        assert window.ai_label.text().startswith("No model: ")
        assert window.ai.unavailable is not None
        index = open_root(qtbot, window, demo_root)
        show_with_ai(qtbot, window, first_case_with_truth(index))
        assert window.viewer.is_complete() and not window.viewer.ai
        assert "No model" in window.findings.summary.text()
        assert not window.errors.messages  # nothing bundled is a state, not an error
        key(qtbot, window, Qt.Key.Key_R)
        pane = window.viewer.panes[SLOTS_2UP[0]]
        QTest.mouseClick(window.viewer.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         window.viewer.canvas.mapFromScene(pane.view.sceneBoundingRect().center()))
        assert "No model" in window.ai_state_label.text()
    finally:
        window.close()


def test_a_bad_model_file_is_one_line_in_the_error_sink(qtbot, tmp_path, cache_dir):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model")
    window = make_window(qtbot, bad)
    try:
        qtbot.waitUntil(lambda: window.ai.unavailable is not None, timeout=TIMEOUT_MS)
        message = window.errors.messages[-1]
        assert "broken" in message and "\n" not in message and "Traceback" not in message
        assert window.ai_label.text().startswith("No model: ")
    finally:
        window.close()


def test_an_image_the_network_cannot_read_is_one_line_in_the_error_sink(qtbot, window, demo_root, tmp_path):
    import shutil

    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    patient_id = first_case_with_truth(build_index(root))
    victim = next(i for i in build_index(root).patients()[patient_id] if (i.laterality, i.view) == ("L", "CC"))
    data = Path(victim.path).read_bytes()
    open_root(qtbot, window, root)
    # cut after indexing (the index checks that the pixel data is all there, so only loading can tell now)
    Path(victim.path).write_bytes(data[: len(data) - 5000])
    show_with_ai(qtbot, window, patient_id)
    ai_lines = [m for m in window.errors.messages if "AI could not run on" in m]
    assert len(ai_lines) == 1 and "L CC" in ai_lines[0] and "\n" not in ai_lines[0] and "Traceback" not in ai_lines[0]
    assert "AI could not run" in window.findings.image_row(victim.path).text(0)
    assert len(window.viewer.ai) == 1  # the other side still has its result


def test_new_actions_are_in_the_menus_and_the_f1_sheet(qtbot, window):
    key(qtbot, window, Qt.Key.Key_F1)
    rows = {action: keys for _, action, keys in window._shortcuts_dialog.rows}
    assert rows["AI prediction (yellow)"] == "A" and rows["AI probability heatmap"] == "H"
    assert rows["Prediction fill more transparent"] == "[" and rows["Prediction fill more opaque"] == "]"
    assert rows["ROI mode: click a point to run one tile there"] == "R"
    assert rows["Cancel AI"] and rows["Cancel indexing / loading / AI; leave ROI mode"] == "Esc"
    assert rows["Findings"] == "Ctrl+3"


def test_cancel_stops_the_inference(qtbot, window, demo_root):
    index = open_root(qtbot, window, demo_root)
    patient_id = first_case_with_truth(index)
    with qtbot.waitSignal(window.viewer.caseShown, timeout=TIMEOUT_MS):
        window.select_patient(patient_id)
    qtbot.waitUntil(lambda: window.ai._current is not None and window.ai._current.kind == "case", timeout=TIMEOUT_MS)
    window.ai_control.cancel()
    qtbot.waitUntil(lambda: not window.ai.busy, timeout=TIMEOUT_MS)
    assert "cancelled" in window.ai_state_label.text()
    assert len(window.viewer.ai) < 2
    with qtbot.waitSignal(window.aiFinished, timeout=TIMEOUT_MS):
        qtbot.keyClick(window.viewer.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # run it again
    assert len(window.viewer.ai) == 2


def test_screenshot_waits_for_the_ai_and_shows_yellow_and_red(demo_root, model_file, tmp_path):
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BCIR_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "main.py", str(demo_root), "--weights", str(model_file), "--screenshot", str(out),
         "--size", "1200x800", "--timeout", "120"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB888)
    rgb = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3]
    rgb = rgb.reshape(image.height(), image.width(), 3).astype(int)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    assert yellow.sum() > 100 and red.sum() > 20


def test_a_model_switched_just_as_a_case_finishes_runs_the_case_again(qtbot, window, demo_root, model_file):
    """The reader switches model the moment the AI answers (before its worker has wound down): the case must
    run again with the new model, not be taken for the old job's work."""
    from model.nn.weights import bundled_model_path

    index = open_root(qtbot, window, demo_root)
    patient_id = next(iter(index.patients()))
    switched = []

    def switch_now(pid):
        if not switched:
            switched.append(pid)
            window.ai_control.set_model_path(bundled_model_path())  # inside caseDone: the job's thread is still winding down

    window.aiFinished.connect(switch_now)
    with qtbot.waitSignals([window.aiFinished, window.aiFinished], timeout=TIMEOUT_MS):
        window.select_patient(patient_id)
    bundled = window.ai.model_version
    assert switched == [patient_id] and bundled != "test-discs"
    qtbot.waitUntil(lambda: {ai.result.model_version for ai in window.viewer.ai.values()} == {bundled}, timeout=TIMEOUT_MS)
