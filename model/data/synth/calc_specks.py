"""Calcification specks by BI-RADS morphology: where they sit in the cluster and the shapes that draw them.

Each maker returns drawing primitives in the cluster frame (u along the duct towards
the nipple, v across, mm), as tuples whose first item names the shape:
``("poly", pts, amp)``, ``("line", pts, width, amp)``, ``("disk", u, v, radius, amp, haze)``,
``("ring", u, v, outer_radius, width, amp)``, ``("ellipse", u, v, ax1, ax2, orientation_deg, amp)``,
``("tube", pts, width, amp)``. ``haze`` (1.0) and tubes are drawn blurrier than specks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def _thick(size_mm: float) -> float:
    """Relative attenuation of a speck of this size (thin specks are fainter)."""
    return float(np.clip(0.35 + 1.3 * size_mm, 0.4, 1.0))


def _spread(pts: np.ndarray, min_dist: float, n: int) -> np.ndarray:
    """Greedy subset of at most n points that are at least min_dist apart (deterministic)."""
    keep: list[np.ndarray] = []
    for p_ in pts:
        if all(float(np.hypot(*(p_ - q))) >= min_dist for q in keep):
            keep.append(p_)
            if len(keep) >= n:
                break
    return np.array(keep) if keep else pts[:1]


def speck_positions(dist: str, n: int, ext: float, r: np.random.Generator) -> np.ndarray:
    """Speck centres (u along the duct direction towards the nipple, v across), mm, for a distribution."""
    half = 0.5 * ext
    if dist == "LINEAR":
        t = r.uniform(-half, half, n)
        bend = r.normal(0, 0.08) / max(half, 1.0)
        v = bend * t * t + r.normal(0, 0.35 + 0.02 * ext, n)
        return np.stack([t, v], 1)
    if dist == "SEGMENTAL":
        nb = int(r.integers(2, 5))
        spread = r.uniform(0.25, 0.45)
        br = r.uniform(-spread, spread, nb)
        which = r.integers(0, nb, n)
        t = r.uniform(0, 1, n) ** 0.8
        u = half - t * ext
        v = t * ext * np.tan(br[which]) + r.normal(0, 0.3, n)
        return np.stack([u, v], 1)
    if dist in ("REGIONAL", "DIFFUSELY_SCATTERED"):
        rr = half * np.sqrt(r.uniform(0, 1, n))
        a = r.uniform(0, 2 * math.pi, n)
        return np.stack([rr * np.cos(a), 0.75 * rr * np.sin(a)], 1)
    aspect = r.uniform(0.5, 0.95)
    p = r.normal(0, 0.42 * half, (n, 2))
    p[:, 1] *= aspect
    norm = np.hypot(p[:, 0], p[:, 1] / aspect)
    p[norm > half] *= (half / norm[norm > half])[:, None] * r.uniform(0.6, 1.0, int((norm > half).sum()))[:, None]
    return p


def _pleomorphic(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """Irregular polygons of varying size and brightness."""
    prims = []
    n = int(r.integers(14, 30) * scale / per_type) + 5
    for (pu, pv) in speck_positions(dist, n, ext, r):
        size = r.uniform(0.08, 0.45)
        nv = int(r.integers(4, 8))
        aa = np.sort(r.uniform(0, 2 * math.pi, nv))
        rr = size * 0.5 * r.uniform(0.45, 1.0, nv)
        el = r.uniform(1.0, 2.2)
        o = r.uniform(0, math.pi)
        qu = rr * np.cos(aa) * el
        qv = rr * np.sin(aa)
        pts = np.stack([pu + qu * math.cos(o) - qv * math.sin(o), pv + qu * math.sin(o) + qv * math.cos(o)], 1)
        prims.append(("poly", pts, amp0 * r.uniform(0.6, 1.05) * _thick(size)))
    return prims


def _fine_linear_branching(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """Thin wavy casts of a duct, broken into pieces, sometimes branching."""
    prims = []
    n = int(r.integers(8, 18) * scale / per_type) + 4
    pos = speck_positions(dist if dist != "CLUSTERED" else "LINEAR" if r.random() < 0.4 else dist, n, ext, r)
    for (pu, pv) in pos:
        L = r.uniform(0.4, 1.8)
        o = r.normal(0, 0.35)
        w = r.uniform(0.08, 0.18)
        pts = [(pu - 0.5 * L * math.cos(o), pv - 0.5 * L * math.sin(o))]
        ns = 4
        for i in range(ns):
            o2 = o + r.normal(0, 0.3)
            x0, y0 = pts[-1]
            pts.append((x0 + L / ns * math.cos(o2), y0 + L / ns * math.sin(o2)))
        a_ = amp0 * r.uniform(0.7, 1.05) * _thick(w * 1.6)
        # broken into 1-3 pieces
        cut = sorted(set(int(c) for c in r.integers(1, ns, int(r.integers(0, 2)))))
        segs = np.split(np.array(pts), cut) if cut else [np.array(pts)]
        for seg in segs:  # np.split leaves a one-step gap between the pieces
            if len(seg) >= 2:
                prims.append(("line", seg, w, a_ * r.uniform(0.8, 1.0)))
        if r.random() < 0.35:  # a branch
            j = int(r.integers(1, ns))
            ob = o + r.choice([-1, 1]) * r.uniform(0.4, 0.9)
            Lb = L * r.uniform(0.3, 0.6)
            x0, y0 = pts[j]
            prims.append(("line", np.array([(x0, y0), (x0 + Lb * math.cos(ob), y0 + Lb * math.sin(ob))]),
                          w * 0.8, a_ * 0.85))
    return prims


def _amorphous(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """Many tiny faint hazy dots."""
    prims = []
    n = int(r.integers(20, 45) * scale / per_type) + 6
    for (pu, pv) in speck_positions(dist, n, ext, r):
        prims.append(("disk", pu, pv, r.uniform(0.05, 0.12), amp0 * r.uniform(0.25, 0.45), 1.0))
    return prims


def _punctate(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """Small round dots."""
    prims = []
    n = int(r.integers(8, 18) * scale / per_type) + 5
    for (pu, pv) in speck_positions(dist, n, ext, r):
        rad_ = r.uniform(0.08, 0.24)
        prims.append(("disk", pu, pv, rad_, amp0 * r.uniform(0.7, 1.0) * _thick(2 * rad_), 0.0))
    return prims


def _round_and_regular(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """Larger round dots, kept apart."""
    prims = []
    n = int(r.integers(5, 12) * scale / per_type) + 5
    for (pu, pv) in _spread(speck_positions(dist, 3 * n, ext, r), 1.2, n):
        rad_ = r.uniform(0.2, 0.5)
        prims.append(("disk", pu, pv, rad_, amp0 * r.uniform(0.85, 1.1) * _thick(2 * rad_), 0.0))
    return prims


def _lucent_center(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """Rings with a darker centre (eggshell)."""
    prims = []
    n = int(r.integers(2, 6) * scale / per_type) + 2
    for (pu, pv) in _spread(speck_positions(dist, 4 * n, ext, r), 3.2, n):
        ro = r.uniform(0.45, 1.2)
        prims.append(("ring", pu, pv, ro, r.uniform(0.15, 0.3), amp0 * r.uniform(0.8, 1.05)))
    return prims


def _coarse(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """A few bright popcorn-like clumps of ellipses."""
    prims = []
    n = int(r.integers(3, 7) * scale / per_type) + 3
    for (pu, pv) in _spread(speck_positions(dist, 3 * n, ext, r), 2.2, n):
        a_ = amp0 * r.uniform(1.0, 1.35)
        for _ in range(int(r.integers(3, 7))):
            du, dv = r.normal(0, 0.4, 2)
            prims.append(("ellipse", pu + du, pv + dv, r.uniform(0.2, 0.55), r.uniform(0.15, 0.4),
                          r.uniform(0, 180.0), a_ * r.uniform(0.8, 1.0)))
    return prims


def _large_rodlike(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """Thick rods along the ducts (secretory)."""
    prims = []
    n = int(r.integers(3, 6) * scale / per_type) + 2
    for (pu, pv) in _spread(speck_positions(dist, 4 * n, ext, r), 2.5, n):
        L = min(ext * 0.5, r.uniform(2.5, 7.0))
        o = r.normal(0, 0.2)
        w = r.uniform(0.3, 0.65)
        seg = np.array([(pu - 0.5 * L * math.cos(o), pv - 0.5 * L * math.sin(o)),
                        (pu, pv + r.normal(0, 0.15)),
                        (pu + 0.5 * L * math.cos(o), pv + 0.5 * L * math.sin(o))])
        prims.append(("line", seg, w, amp0 * r.uniform(0.9, 1.2)))
    return prims


def _vascular(r, dist: str, ext: float, scale: float, per_type: int, amp0: float) -> list[tuple]:
    """One or two tortuous vessels with dashed parallel tracks along both walls."""
    prims = []
    nv_ = 1 + int(r.random() < 0.4)
    for _ in range(nv_):
        vv = r.uniform(-0.25, 0.25) * ext
        t = np.linspace(-0.5 * ext, 0.5 * ext, 40)
        hd = np.cumsum(r.normal(0, 0.12, t.size))
        hd -= hd.mean()
        cen = np.stack([t, vv + np.cumsum(np.sin(hd)) * (t[1] - t[0])], 1)
        tang = np.gradient(cen, axis=0)
        nrm = np.stack([-tang[:, 1], tang[:, 0]], 1) / np.linalg.norm(tang, axis=1)[:, None]
        sep = r.uniform(0.8, 1.4)
        prims.append(("tube", cen, sep + 0.4, amp0 * 0.08))  # the vessel itself
        for side in (-1, 1):
            line = cen + nrm * (side * sep * 0.5)
            prims.extend(_dashed_track(r, line, len(t), amp0))
    return prims


def _dashed_track(r, line: np.ndarray, n_pts: int, amp0: float) -> list[tuple]:
    """An interrupted calcified track along one vessel wall."""
    prims = []
    i0 = int(r.integers(0, 3))
    while i0 < n_pts - 2:
        i1 = min(n_pts - 1, i0 + int(r.integers(2, 6)))
        if r.random() < 0.7:
            w = r.uniform(0.1, 0.22)
            prims.append(("line", line[i0:i1 + 1], w, amp0 * r.uniform(0.7, 1.0) * _thick(1.6 * w)))
        i0 = i1 + int(r.integers(1, 3))
    return prims


SPECK_MAKERS: dict[str, Callable[..., list[tuple]]] = {
    "PLEOMORPHIC": _pleomorphic,
    "FINE_LINEAR_BRANCHING": _fine_linear_branching,
    "AMORPHOUS": _amorphous,
    "PUNCTATE": _punctate,
    "ROUND_AND_REGULAR": _round_and_regular,
    "LUCENT_CENTER": _lucent_center,
    "COARSE": _coarse,
    "LARGE_RODLIKE": _large_rodlike,
    "VASCULAR": _vascular,
}
