"""Calcification clusters: morphology and distribution, specks drawn at <= 0.03 mm, the smooth cluster outline."""

from __future__ import annotations

import math

import cv2
import numpy as np

from model.data.synth.calc_specks import SPECK_MAKERS
from model.data.synth.lesion_patch import Patch, tokens
from model.data.synth.raster import blur
from model.data.synth.seeding import rng
from model.data.synth.specs import LesionSpec

# visibility per CBIS subtlety 1..5 (attenuation units; fat of full thickness is 1.0)
_CALC_CONTRAST = (0.9, 1.5, 2.2, 3.0, 3.8)
_CALC_ALIASES = {
    "LUCENT_CENTERED": "LUCENT_CENTER", "LUCENT_CENTRED": "LUCENT_CENTER", "EGGSHELL": "LUCENT_CENTER",
    "SKIN": "LUCENT_CENTER", "DYSTROPHIC": "COARSE", "POPCORN": "COARSE", "MILK_OF_CALCIUM": "PUNCTATE",
    "ROUND": "ROUND_AND_REGULAR", "FINE_LINEAR": "FINE_LINEAR_BRANCHING", "LARGE_ROD_LIKE": "LARGE_RODLIKE",
}
_CALC_TYPES = ("PLEOMORPHIC", "FINE_LINEAR_BRANCHING", "AMORPHOUS", "PUNCTATE", "COARSE",
               "ROUND_AND_REGULAR", "LUCENT_CENTER", "VASCULAR", "LARGE_RODLIKE")
_CALC_DISTRIBUTIONS = ("CLUSTERED", "LINEAR", "SEGMENTAL", "REGIONAL", "DIFFUSELY_SCATTERED")
_FINE_MM = 0.03          # specks are drawn at this pixel size or finer, then area-averaged


def _calc_types(les: LesionSpec, r: np.random.Generator) -> list[str]:
    """The morphologies asked for (aliases resolved), or one drawn from typical ones for the pathology."""
    out = []
    for t in tokens(les.calc_type):
        t = _CALC_ALIASES.get(t, t)
        if t in _CALC_TYPES and t not in out:
            out.append(t)
    if not out:
        pool = ("PLEOMORPHIC", "PLEOMORPHIC", "FINE_LINEAR_BRANCHING", "AMORPHOUS") if les.malignant else \
            ("COARSE", "ROUND_AND_REGULAR", "PUNCTATE", "LUCENT_CENTER")
        out = [pool[int(r.integers(len(pool)))]]
    return out


def _distribution(les: LesionSpec, r: np.random.Generator) -> str:
    """The distribution asked for, or mostly clustered (malignant ones sometimes linear)."""
    dists = [t for t in tokens(les.calc_distribution) if t in _CALC_DISTRIBUTIONS]
    return dists[0] if dists else ("CLUSTERED" if r.random() < 0.75 or not les.malignant else "LINEAR")


class _ClusterFrame:
    """Maps cluster-frame (u, v) mm to canonical-image mm: origin at the cluster centre, u along ``ang``."""

    def __init__(self, cx: float, cy: float, ang: float):
        self.cx, self.cy, self.ang = cx, cy, ang
        self.c, self.s = math.cos(ang), math.sin(ang)

    def to_view(self, u_, v_):
        u_ = np.asarray(u_, float)
        v_ = np.asarray(v_, float)
        return self.cx + u_ * self.c - v_ * self.s, self.cy + u_ * self.s + v_ * self.c


def _primitive_points(prims: list[tuple]) -> np.ndarray:
    """Centres of the round primitives and vertices of the others: what the cluster outline must enclose."""
    centres = []
    for p_ in prims:
        if p_[0] in ("disk", "ring", "ellipse"):
            centres.append((p_[1], p_[2]))
        else:
            centres.extend(p_[1].tolist())
    return np.array(centres, float)


def _draw_primitive(p_: tuple, pt: Patch, frame: _ClusterFrame, lay: np.ndarray, haze: np.ndarray) -> None:
    """Draw one primitive on the fine grid: sharp specks into ``lay``, hazy ones and vessels into ``haze``."""
    kind = p_[0]
    if kind == "disk":
        _, pu, pv, rad_, a_, hz = p_
        ctr = pt.to_px(*frame.to_view(pu, pv))
        target = haze if hz else lay
        cv2.circle(target, (int(ctr[0]), int(ctr[1])), max(0, int(round(rad_ / pt.fine * 16))), float(a_), -1,
                   cv2.LINE_8, shift=4)
    elif kind == "ring":
        _, pu, pv, ro, w, a_ = p_
        ctr = pt.to_px(*frame.to_view(pu, pv))
        cv2.circle(lay, (int(ctr[0]), int(ctr[1])), int(round(ro / pt.fine * 16)), float(a_), -1, cv2.LINE_8, shift=4)
        cv2.circle(lay, (int(ctr[0]), int(ctr[1])), int(round(max(ro - w, 0.05) / pt.fine * 16)), float(a_ * 0.3), -1,
                   cv2.LINE_8, shift=4)
    elif kind == "ellipse":
        _, pu, pv, ax1, ax2, o, a_ = p_
        ctr = pt.to_px(*frame.to_view(pu, pv))
        cv2.ellipse(lay, (int(ctr[0]), int(ctr[1])), (int(round(ax1 / pt.fine * 16)), int(round(ax2 / pt.fine * 16))),
                    float(o + math.degrees(frame.ang)), 0.0, 360.0, float(a_), -1, cv2.LINE_8, shift=4)
    elif kind == "poly":
        _, pts, a_ = p_
        cv2.fillPoly(lay, [pt.to_px(*frame.to_view(pts[:, 0], pts[:, 1]))], float(a_), cv2.LINE_8, shift=4)
    else:  # "tube" (hazy) or "line"
        _, pts, w, a_ = p_
        target = haze if kind == "tube" else lay
        cv2.polylines(target, [pt.to_px(*frame.to_view(pts[:, 0], pts[:, 1]))], False, float(a_),
                      max(1, int(round(w / pt.fine))), cv2.LINE_8, shift=4)


def _cluster_outline(points: np.ndarray, frame: _ClusterFrame, pt: Patch, pixel_mm: float, ext: float) -> np.ndarray:
    """Mask of the cluster: convex hull of the specks, grown by a margin, smoothed (one blob, not one per speck)."""
    gx, gy = frame.to_view(points[:, 0], points[:, 1])
    px = np.stack([(gx - pt.x0) / pixel_mm - 0.5, (gy - pt.y0) / pixel_mm - 0.5], 1)
    hull = cv2.convexHull(np.round(px * 16).astype(np.int32))
    m8 = np.zeros((pt.h, pt.w), np.uint8)
    cv2.fillConvexPoly(m8, hull, 1, cv2.LINE_8, shift=4)
    margin = (1.2 + 0.06 * ext) / pixel_mm
    dt = cv2.distanceTransform((1 - m8).astype(np.uint8), cv2.DIST_L2, 5)
    return dt <= margin


def render_calcifications(les: LesionSpec, cx: float, cy: float, axis_ang: float, density: int, pixel_mm: float,
                          rows: int, cols: int):
    """Attenuation patch and smooth cluster-outline mask of a calcification group; returns (patch, mask, r0, c0)."""
    r = rng("lesion", les.seed, "calc")
    ext = float(np.clip(les.size_mm, 2.0, 80.0))
    types = _calc_types(les, r)
    dist = _distribution(les, r)
    sub = int(np.clip(les.subtlety, 1, 5))
    amp0 = _CALC_CONTRAST[sub - 1] * (1.0 - 0.06 * (density - 1))
    ang = axis_ang + r.normal(0, 0.3)
    scale = (ext / 10.0) ** 0.7
    if dist in ("REGIONAL", "DIFFUSELY_SCATTERED"):
        scale *= 0.7
    prims: list[tuple] = []
    per_type = max(1, len(types))
    for ctype in types:
        prims.extend(SPECK_MAKERS[ctype](r, dist, ext, scale, per_type, amp0))
    points = _primitive_points(prims)
    half = float(np.abs(points).max()) + 4.0 if points.size else ext * 0.5 + 4.0
    pt = Patch(cx, cy, half, pixel_mm, rows, cols, _FINE_MM)
    frame = _ClusterFrame(cx, cy, ang)
    lay = np.zeros((pt.fh, pt.fw), np.float32)
    haze = np.zeros((pt.fh, pt.fw), np.float32)
    for p_ in prims:
        _draw_primitive(p_, pt, frame, lay, haze)
    lay = blur(lay, 0.05 / pt.fine)
    if haze.any():
        lay += blur(haze, 0.1 / pt.fine)
    patch = pt.down(lay)
    mask = _cluster_outline(points, frame, pt, pixel_mm, ext)
    return patch, mask, pt.r0, pt.c0
