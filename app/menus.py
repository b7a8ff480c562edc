"""The menu bar: every action of the app, with its keys (the F1 sheet is read from here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from app.panels.worklist import FILTERS

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
    blinded: QAction
    lens: QAction
    sigmoid: QAction
    recent_menu: QMenu
    refresh_recent: Callable[[], None]
    start_reading: QAction
    node: QAction
    review_actions: list[QAction]  # the audit review's: off in reading mode
    reading_actions: list[QAction]  # reading mode's: off in audit mode


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
    _add(window, file_menu, "Open files…", window.ask_open_file, ["Ctrl+Shift+O"])
    recent_menu = file_menu.addMenu("Recent folders")

    def refresh_recent() -> None:
        recent_menu.clear()
        folders = window.settings.recent()
        for n, folder in enumerate(folders, 1):
            action = recent_menu.addAction(f"&{n % 10}  {folder}" if n <= 10 else folder)
            action.triggered.connect(lambda _checked=False, folder=folder: window.open_recent(folder))
        if folders:
            recent_menu.addSeparator()
            recent_menu.addAction("Clear the list").triggered.connect(lambda: (window.settings.clear_recent(), refresh_recent()))
        else:
            recent_menu.addAction("(none yet)").setEnabled(False)

    refresh_recent()
    _add(window, file_menu, "Query PACS…", window.pacs_control.ask_query, ["Ctrl+Shift+F"])
    node = _add(window, file_menu, "Receive studies (our DICOM node)", window.pacs_control.toggle_node, checkable=True)
    _add(window, file_menu, "Send results to PACS (SEG and SR)", window.pacs_control.send_results, ["Ctrl+Shift+S"])
    _add(window, file_menu, "PACS settings (our node, archives)…", window.pacs_control.ask_settings)
    _add(window, file_menu, "Export reviews to CSV…", window.ask_export_reviews, ["Ctrl+E"])
    cancel = _add(window, file_menu, "Cancel indexing / loading / AI; leave ROI mode", window.escape, ["Esc"])
    file_menu.addSeparator()
    quit_action = _add(window, file_menu, "Quit", window.close, ["Ctrl+Q"])
    quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)  # also from the Retrain and Models windows

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
    sigmoid = _add(window, view, "Sigmoid VOI function", viewer.set_sigmoid, ["S"], checkable=True)
    invert = _add(window, view, "Invert", viewer.set_invert, ["I"], checkable=True)
    lens = _add(window, view, "Magnifier lens (twice the zoom, at least 1:1)", viewer.set_lens, ["Z"], checkable=True)
    truth = _add(window, view, "Ground-truth outlines", viewer.set_truth_visible, ["T"], checkable=True, checked=True)
    prediction = _add(window, view, "AI prediction (yellow)", ai_control.set_prediction_visible, ["A"], checkable=True, checked=True)
    heatmap = _add(window, view, "AI probability heatmap", ai_control.set_heatmap_visible, ["H"], checkable=True)
    _add(window, view, "Prediction fill more transparent", lambda: ai_control.change_fill_opacity(-1), ["["])
    _add(window, view, "Prediction fill more opaque", lambda: ai_control.change_fill_opacity(+1), ["]"])
    view.addSeparator()
    docks = ((window.worklist, "Ctrl+1"), (window.skipped, "Ctrl+2"), (window.findings, "Ctrl+3"), (window.review, "Ctrl+4"),
             (window.reading, "Ctrl+5"))
    for dock, keys in docks:
        toggle = dock.toggleViewAction()
        toggle.setShortcut(QKeySequence(keys))
        view.addAction(toggle)

    ai = bar.addMenu("&AI")
    roi = _add(window, ai, "ROI mode: click a point to run one tile there", ai_control.set_roi_mode, ["R"], checkable=True)
    _add(window, ai, "Cancel AI", ai_control.cancel, ["Shift+Esc"])
    _add(window, ai, "Run AI on this case again", ai_control.run_again, ["Ctrl+R"])
    _add(window, ai, "Choose model file…", ai_control.ask_model_file)

    reading = bar.addMenu("Rea&ding")
    control = window.reading_control
    start_reading = _add(window, reading, "Start reading (choose the reader)…", control.ask_start, ["Ctrl+Shift+R"])
    reading_actions = [
        _add(window, reading, "Commit my read", control.commit, ["Ctrl+Return"]),
        _add(window, reading, "Normal both breasts, next case", control.normal_next, ["F9"]),
        _add(window, reading, "Park this case (keep the read on this workstation)", control.park_next,
             ["Ctrl+Shift+P"]),
        _add(window, reading, "Next case in my worklist", control.next_case, ["Ctrl+Shift+N"]),
        _add(window, reading, "Show the AI (where the site shows it on request)", control.request_ai, ["Ctrl+Shift+I"]),
        _add(window, reading, "Send my read to PACS (SR)", window.pacs_control.send_read),
        _add(window, reading, "Statistics…", control.show_stats),
        _add(window, reading, "Leave reading mode (audit view)…", control.ask_leave),
    ]
    for action in reading_actions:
        action.setEnabled(False)

    review = bar.addMenu("&Review")
    blinded = _add(window, review, "Blinded reading: hide AI and truth until my own read", window.set_blinded_mode,
                   ["Ctrl+B"], checkable=True)
    review_actions = [
        blinded,
        _add(window, review, "Choose BI-RADS", window.review.focus_birads, ["F2"]),
        _add(window, review, "Record my own read (blinded; reveals the AI)", window.record_own_read, ["Ctrl+Return"]),
        _add(window, review, "Agree with the AI", lambda: window.record_verdict("agree"), ["Ctrl+Shift+A"]),
        _add(window, review, "Disagree with the AI", lambda: window.record_verdict("disagree"), ["Ctrl+Shift+D"]),
    ]
    review.addSeparator()
    _add(window, review, "Review history…", window.show_review_history, ["Ctrl+H"])
    _add(window, review, "Export reviews to CSV…", window.ask_export_reviews)

    tools = bar.addMenu("&Tools")
    _add(window, tools, "Retrain on folder…", window.show_retrain, ["Ctrl+Shift+T"])
    _add(window, tools, "Models…", window.show_models, ["Ctrl+Shift+M"])

    nav = bar.addMenu("&Navigate")
    _add(window, nav, "Next patient", lambda: window.step_patient(+1), ["N", "Space", "PgDown"])
    _add(window, nav, "Previous patient", lambda: window.step_patient(-1), ["P", "PgUp"])
    _add(window, nav, "Search patient ID", window.focus_search, ["Ctrl+F", "/"])
    shown = nav.addMenu("Worklist shows")
    for n, name in enumerate(FILTERS, 1):
        _add(window, shown, name, lambda name=name: window.show_worklist_filter(name), [f"Alt+{n}"])

    help_menu = bar.addMenu("&Help")
    _add(window, help_menu, "Keyboard shortcuts", window.show_shortcuts, ["F1"])
    _add(window, help_menu, "About B-Cir Review", window.show_about)
    return Actions(four_up=four_up, invert=invert, truth=truth, cancel=cancel, prediction=prediction, heatmap=heatmap, roi=roi,
                   blinded=blinded, lens=lens, sigmoid=sigmoid, recent_menu=recent_menu, refresh_recent=refresh_recent,
                   start_reading=start_reading, review_actions=review_actions, reading_actions=reading_actions,
                   node=node)
