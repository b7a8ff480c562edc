"""What every lesion renderer shares: the supersampled drawing patch, lesion-local noise, descriptor words."""

from __future__ import annotations

import math

import cv2
import numpy as np


def tokens(text: str) -> list[str]:
    """Upper-case words of a CBIS-DDSM descriptor ("LOBULATED-IRREGULAR"), without NA/N/A/NONE."""
    t = (text or "").upper().replace(" ", "_")
    return [p for p in t.replace("/", "-").split("-") if p and p not in ("NA", "N/A", "NONE")]


class Patch:
    """A rectangle of the full-resolution canonical image with a supersampled drawing grid."""

    def __init__(self, cx: float, cy: float, half_mm: float, pixel_mm: float, rows: int, cols: int, fine_target: float):
        self.c0 = max(0, int(math.floor((cx - half_mm) / pixel_mm)))
        self.c1 = min(cols, int(math.ceil((cx + half_mm) / pixel_mm)))
        self.r0 = max(0, int(math.floor((cy - half_mm) / pixel_mm)))
        self.r1 = min(rows, int(math.ceil((cy + half_mm) / pixel_mm)))
        self.ss = max(1, int(math.ceil(pixel_mm / fine_target - 1e-6)))
        self.fine = pixel_mm / self.ss
        self.pixel_mm = pixel_mm
        self.h = max(1, self.r1 - self.r0)
        self.w = max(1, self.c1 - self.c0)
        self.fh, self.fw = self.h * self.ss, self.w * self.ss
        self.x0 = self.c0 * pixel_mm   # mm of the patch's left edge
        self.y0 = self.r0 * pixel_mm

    def local(self, cx: float, cy: float, ang: float):
        """Fine-grid coordinates (mm) rotated into the lesion frame (u along ang, v across)."""
        xs = (self.x0 + (np.arange(self.fw, dtype=np.float32) + 0.5) * self.fine - cx)[None, :]
        ys = (self.y0 + (np.arange(self.fh, dtype=np.float32) + 0.5) * self.fine - cy)[:, None]
        c, s = np.float32(math.cos(ang)), np.float32(math.sin(ang))
        u = xs * c + ys * s
        v = -xs * s + ys * c
        return u, v

    def to_px(self, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
        """Fixed-point (shift=4) fine-grid pixel coordinates for cv2 drawing."""
        px = (np.asarray(x_mm) - self.x0) / self.fine - 0.5
        py = (np.asarray(y_mm) - self.y0) / self.fine - 0.5
        return np.round(np.stack([px, py], -1) * 16).astype(np.int32)

    def down(self, fine_img: np.ndarray) -> np.ndarray:
        """Area-average a fine-grid image down to the patch's output pixels."""
        if self.ss == 1:
            return fine_img
        return cv2.resize(fine_img, (self.w, self.h), interpolation=cv2.INTER_AREA)


def local_noise(rng: np.random.Generator, half_mm: float, cell_mm: float, sigma_cells: float = 1.5):
    """Smooth unit-std noise on a fixed mm grid (resolution independent); returns (grid, origin, cell)."""
    n = int(math.ceil(2 * half_mm / cell_mm)) + 4
    g = rng.standard_normal((n, n)).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), sigma_cells, borderType=cv2.BORDER_REFLECT)
    g /= max(float(g.std()), 1e-6)
    return g, -half_mm - 2 * cell_mm, cell_mm


def sample_local(grid, origin: float, cell: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample a :func:`local_noise` grid at lesion-frame coordinates (u, v) in mm."""
    mx = ((u - np.float32(origin)) / np.float32(cell) - 0.5).astype(np.float32)
    my = ((v - np.float32(origin)) / np.float32(cell) - 0.5).astype(np.float32)
    mx, my = np.broadcast_arrays(mx, my)
    return cv2.remap(grid, np.ascontiguousarray(mx), np.ascontiguousarray(my), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)
