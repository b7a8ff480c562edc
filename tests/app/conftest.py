"""Fixtures of the GUI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_file(tmp_path_factory, disc_model) -> Path:
    """The disc model as a file the app can load (the bundled model is never used by the GUI tests)."""
    from model.nn.weights import save_model

    return save_model(disc_model.net, disc_model.card, tmp_path_factory.mktemp("model") / "discs.safetensors")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("BCIR_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def window(qtbot, monkeypatch):
    """The main window, the viewer alone (tests/app/background/test_ai.py drives the AI with its own)."""
    from app.main_window import MainWindow

    monkeypatch.setenv("BCIR_MODEL", "none")
    w = MainWindow()
    w.resize(1500, 900)  # a reading workstation; the docks leave the panes room
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    qtbot.waitExposed(w)
    yield w
    w.close()
