"""``python main.py PATH --screenshot FILE`` in a fresh process: it must save a picture of the case and exit 0."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[2]


def test_screenshot_of_first_case_with_truth(demo_root, tmp_path):
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BCIR_MODEL": "none"}  # the AI's picture: tests/app/background/test_ai.py
    result = subprocess.run(
        [sys.executable, "main.py", str(demo_root), "--screenshot", str(out), "--size", "1000x700", "--timeout", "60"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file() and out.stat().st_size > 10_000
    image = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB888)
    assert (image.width(), image.height()) == (1000, 700)
    rgb = np.frombuffer(image.constBits(), np.uint8).reshape(700, image.bytesPerLine())[:, : 1000 * 3].reshape(700, 1000, 3)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    assert red.sum() > 20  # the ground-truth outline is in the picture
    grey = (np.abs(rgb[..., 0].astype(int) - rgb[..., 2]) < 3) & (rgb[..., 0] > 60)
    assert grey.sum() > 50_000  # and so are the mammograms


def test_missing_path_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "main.py", str(tmp_path / "nowhere"), "--screenshot", str(tmp_path / "x.png")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
