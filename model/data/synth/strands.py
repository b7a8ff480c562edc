"""Trabecular strands (Cooper's ligaments, ducts) and vessels: random-walk lines drawn into a view."""

from __future__ import annotations

import math

import cv2
import numpy as np

from model.data.synth.parenchyma import TissueParams
from model.data.synth.raster import blur
from model.data.synth.seeding import rng
from model.data.synth.specs import BreastSpec
from model.data.synth.tissue_texture import NippleFrame


def _wander(r: np.random.Generator, a: float, b: float, heading: float, *, length: float, step: float,
            turn: float) -> np.ndarray:
    """A random-walk polyline from (a, b): ``length / step`` steps, the heading drifting by N(0, turn) each."""
    pts = [(a, b)]
    for _ in range(int(length / step)):
        heading += r.normal(0.0, turn)
        a += step * math.cos(heading)
        b += step * math.sin(heading)
        pts.append((a, b))
    return np.array(pts)


def line_paths(breast: BreastSpec, lat: str, P: TissueParams) -> list[tuple[np.ndarray, float, float]]:
    """Centre lines of trabecular strands and vessels in breast-normalised coordinates, with width and amplitude.

    ``a`` runs from the nipple back towards the chest wall, ``b`` down, in mm of a
    100 mm deep breast. Strands run roughly towards the nipple (ducts, trabeculae,
    Cooper's ligaments); vessels are longer, wider and tortuous.
    """
    r = rng("lines", breast.seed, lat)
    paths = []
    for _ in range(P.strands):
        a = r.uniform(3.0, 120.0)
        b = r.uniform(-110.0, 110.0)
        heading = math.atan2(-b, -a) + r.normal(0, 0.45)
        if r.random() < 0.5:
            heading += math.pi
        pts = _wander(r, a, b, heading, length=r.uniform(6.0, 40.0), step=1.0, turn=0.07)
        paths.append((pts, r.uniform(0.1, 0.35), r.uniform(0.05, 0.16)))
    for _ in range(P.vessels):
        a = r.uniform(70.0, 110.0)
        b = r.uniform(-55.0, 55.0)
        heading = math.atan2(-b * r.uniform(0.3, 0.8), -a) + r.normal(0, 0.25)
        pts = _wander(r, a, b, heading, length=r.uniform(50.0, 100.0), step=2.0, turn=0.12)
        paths.append((pts, r.uniform(0.7, 1.6), r.uniform(0.08, 0.16)))
    return paths


def _draw_faded_line(layer: np.ndarray, fr: NippleFrame, pts: np.ndarray, width: float, amp: float) -> None:
    """Draw one normalised-coordinate path into the working-grid layer, fading in and out along its length."""
    work_mm = fr.work_mm
    px = (fr.xn - pts[:, 0] / fr.k) / work_mm - 0.5
    py = (fr.yn + pts[:, 1] / fr.k) / work_mm - 0.5
    poly = np.round(np.stack([px, py], 1) * 16).astype(np.int32)
    w_px = width / work_mm
    th_px = max(1, int(round(w_px)))
    a_line = amp * min(1.0, w_px / th_px)
    n_pts = len(poly)
    if n_pts < 3:
        return
    # fade in and out along the line (strands are not wires)
    prof = np.sin(np.linspace(0.0, math.pi, n_pts - 1)) ** 0.6
    for i in range(n_pts - 1):
        cv2.line(layer, (int(poly[i, 0]), int(poly[i, 1])), (int(poly[i + 1, 0]), int(poly[i + 1, 1])),
                 float(a_line * prof[i]), th_px, cv2.LINE_8, shift=4)


def strand_layer(breast: BreastSpec, lat: str, P: TissueParams, fr: NippleFrame) -> np.ndarray:
    """Strands and vessels of the breast mapped into this view's working grid (float32, slightly blurred)."""
    lines = np.zeros((fr.wr, fr.wc), np.float32)
    for pts, width, amp in line_paths(breast, lat, P):
        _draw_faded_line(lines, fr, pts, width, amp)
    return blur(lines, max(0.5, 0.06 / fr.work_mm))
