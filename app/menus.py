"""The menu bar: every action of the app, with its keys (the F1 sheet is read from here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

if TYPE_CHECKING:
    from app.main_window import MainWindow

ZOOM_STEP = 1.25


@dataclass
class Actions:
    """The actions whose state other code reads or sets."""

    four_up: QAction
    invert: QAction
    truth: QAction
    cancel: QAction
    prediction: QAction
    heatmap: QAction
    roi: QAction


def _add(window: MainWindow, menu: QMenu, text: str, slot: Callable, keys=(), *, checkable=False, checked=False) -> QAction:
    action = QAction(text, window)
    if keys:
        action.setShortcuts([QKeySequence(k) for k in keys])
    if checkable:
        action.setCheckable(True)
        action.setChecked(checked)
        action.toggled.connect(slot)
    else:
        action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    window.addAction(action)  # the keys work whichever widget has focus
    return action


def build_menus(window: MainWindow) -> Actions:
    bar = window.menuBar()
    viewer = window.viewer
    ai_control = window.ai_control

    file_menu = bar.addMenu("&File")
    _add(window, file_menu, "Open folder…", window.ask_open_folder, ["Ctrl+O"])
    _add(window, file_menu, "Open file…", window.ask_open_file, ["Ctrl+Shift+O"])
    cancel = _add(window, file_menu, "Cancel indexing / loading / AI; leave ROI mode", window.escape, ["Esc"])
    file_menu.addSeparator()
    _add(window, file_menu, "Quit", window.close, ["Ctrl+Q"])

    view = bar.addMenu("&View")
    four_up = _add(window, view, "4-up (CC and MLO)", viewer.set_four_up, ["M"], checkable=True)
    _add(window, view, "Fit to window", viewer.fit, ["F"])
    _add(window, view, "1:1 pixels", viewer.one_to_one, ["0"])
    _add(window, view, "Zoom in", lambda: viewer.zoom(1 / ZOOM_STEP), ["+", "="])
    _add(window, view, "Zoom out", lambda: viewer.zoom(ZOOM_STEP), ["-"])
    view.addSeparator()
    _add(window, view, "Next window preset", window.next_preset, ["W"])
    presets = view.addMenu("Window preset")
    for n in range(1, 10):
        _add(window, presets, f"Preset {n}", lambda n=n: window.set_preset(n - 1), [str(n)])
    invert = _add(window, view, "Invert", viewer.set_invert, ["I"], checkable=True)
    truth = _add(window, view, "Ground-truth outlines", viewer.set_truth_visible, ["T"], checkable=True, checked=True)
    prediction = _add(window, view, "AI prediction (yellow)", ai_control.set_prediction_visible, ["A"], checkable=True, checked=True)
    heatmap = _add(window, view, "AI probability heatmap", ai_control.set_heatmap_visible, ["H"], checkable=True)
    _add(window, view, "Prediction fill more transparent", lambda: ai_control.change_fill_opacity(-1), ["["])
    _add(window, view, "Prediction fill more opaque", lambda: ai_control.change_fill_opacity(+1), ["]"])
    view.addSeparator()
    for dock, keys in ((window.worklist, "Ctrl+1"), (window.skipped, "Ctrl+2"), (window.findings, "Ctrl+3")):
        toggle = dock.toggleViewAction()
        toggle.setShortcut(QKeySequence(keys))
        view.addAction(toggle)

    ai = bar.addMenu("&AI")
    roi = _add(window, ai, "ROI mode: click a point to run one tile there", ai_control.set_roi_mode, ["R"], checkable=True)
    _add(window, ai, "Cancel AI", ai_control.cancel, ["Shift+Esc"])
    _add(window, ai, "Run AI on this case again", ai_control.run_again, ["Ctrl+R"])
    _add(window, ai, "Choose model file…", ai_control.ask_model_file)

    nav = bar.addMenu("&Navigate")
    _add(window, nav, "Next patient", lambda: window.step_patient(+1), ["N", "Space", "PgDown"])
    _add(window, nav, "Previous patient", lambda: window.step_patient(-1), ["P", "PgUp"])
    _add(window, nav, "Search patient ID", window.focus_search, ["Ctrl+F", "/"])

    help_menu = bar.addMenu("&Help")
    _add(window, help_menu, "Keyboard shortcuts", window.show_shortcuts, ["F1"])
    _add(window, help_menu, "About B-Cir Review", window.show_about)
    return Actions(four_up=four_up, invert=invert, truth=truth, cancel=cancel, prediction=prediction, heatmap=heatmap, roi=roi)
