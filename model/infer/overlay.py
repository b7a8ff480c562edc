"""Overlay pictures for files and reports: prediction in yellow, ground truth in red (the design card's colours)."""

from __future__ import annotations

import cv2
import numpy as np

from model.data import display
from model.data.mammogram import Mammogram
from model.fileio import atomic_write_bytes

YELLOW_BGR = (0, 230, 255)
RED_BGR = (40, 40, 230)


def render_overlay(image: Mammogram, predicted: np.ndarray | None, truth: list[np.ndarray] = (), *,
                   max_rows: int = 1600, fill_alpha: float = 0.3) -> np.ndarray:
    """BGR picture: the mammogram as a reader sees it, the predicted mask filled and outlined in yellow,
    each ground-truth mask outlined in red. Scaled down to at most ``max_rows`` rows."""
    grey = display.render(image)
    scale = min(1.0, max_rows / grey.shape[0])
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA) if scale < 1 else grey
    out = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(size[1] / 600))

    def fit(mask: np.ndarray) -> np.ndarray:
        mask = mask.astype(np.uint8)
        return cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) if scale < 1 else mask

    if predicted is not None and predicted.any():
        m = fit(predicted)
        tint = out.copy()
        tint[m > 0] = YELLOW_BGR
        out = cv2.addWeighted(tint, fill_alpha, out, 1 - fill_alpha, 0)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, YELLOW_BGR, thickness, cv2.LINE_AA)
    for mask in truth:
        contours, _ = cv2.findContours(fit(mask), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, RED_BGR, thickness, cv2.LINE_AA)
    return out


def write_png(path, image: np.ndarray) -> None:
    """Encode in memory, then write atomically."""
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # the 8-bit images it is given (a mask, render_overlay's picture) always encode: a caller's bug
        raise ValueError(f"could not encode {path}")
    atomic_write_bytes(path, data.tobytes())
