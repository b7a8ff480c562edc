"""Shape of the compressed breast in one view: outline, nipple, pectoral muscle, where lesions go.

Canonical frame: chest wall at x = 0, nipple towards +x, y down, millimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model.data.synth.seeding import rng
from model.data.synth.specs import BreastSpec

_OUTLINE_SAMPLES = 4097  # radial outline table over theta in (-pi/2, pi/2)


@dataclass(frozen=True)
class _BreastShape:
    """Breast-level draws, the same for the CC and the MLO of one breast."""

    depth_jitter: float
    upper_jitter: float
    lower_jitter: float
    harm_a: np.ndarray       # amplitudes of the harmonics 2..5 of the outline
    harm_p: np.ndarray       # their phases
    nip_h: float             # nipple bump height (mm)
    nip_w: float             # nipple bump width (mm)
    skin_mm: float
    edge_r: float            # radius of the semicircular compressed edge (mm)


def _draw_breast_shape(breast: BreastSpec, lat: str, size: float) -> _BreastShape:
    rb = rng("breast-shape", breast.seed, lat)
    return _BreastShape(
        depth_jitter=rb.uniform(0.9, 1.1),
        upper_jitter=rb.uniform(0.9, 1.08),
        lower_jitter=rb.uniform(0.9, 1.08),
        harm_a=rb.normal(0.0, 0.012, 4),
        harm_p=rb.uniform(0, 2 * math.pi, 4),
        nip_h=rb.uniform(4.5, 7.5) * size ** 0.5,
        nip_w=rb.uniform(7.0, 10.0) * size ** 0.5,
        skin_mm=rb.uniform(1.4, 2.0),
        edge_r=rb.uniform(20.0, 27.0) * size ** 0.4,
    )


@dataclass(frozen=True)
class _Superellipse:
    """The view's outline before harmonics: centre, depth, upper/lower half-heights and exponents, tilt."""

    D: float
    xc: float
    yc: float
    hu: float
    hl: float
    pu: float
    pl: float
    tau: float


def _cc_superellipse(rv: np.random.Generator, H: float, D: float, size: float, bs: _BreastShape) -> _Superellipse:
    """CC: a "D" roughly centred on the film."""
    xc = -rv.uniform(0.06, 0.14) * D
    yc = H * rv.uniform(0.47, 0.53)
    hu = max(min(80.0 * size * bs.upper_jitter, yc - 0.03 * H), 0.2 * H)
    hl = max(min(80.0 * size * bs.lower_jitter, 0.97 * H - yc), 0.2 * H)
    pu = pl = rv.uniform(2.0, 2.5)
    tau = rv.normal(0.0, 0.04)
    return _Superellipse(D, xc, yc, hu, hl, pu, pl, tau)


def _mlo_superellipse(rv: np.random.Generator, H: float, W: float, D: float, nip_h: float) -> _Superellipse:
    """MLO: taller, tilted, running off the top edge into the axilla."""
    D = max(min(D * rv.uniform(1.0, 1.08), 0.84 * W - nip_h), 0.3 * W)
    xc = -rv.uniform(0.08, 0.15) * D
    yc = H * rv.uniform(0.56, 0.63)
    hu = yc * rv.uniform(1.1, 1.25)
    pu = rv.uniform(1.3, 1.6)
    hl = max(H * rv.uniform(0.92, 1.0) - yc, 0.2 * H)
    pl = rv.uniform(2.0, 2.5)
    tau = rv.uniform(0.06, 0.16)
    return _Superellipse(D, xc, yc, hu, hl, pu, pl, tau)


def _outline_radius(th: np.ndarray, se: _Superellipse, bs: _BreastShape, nip_h: float, nip_w: float) -> np.ndarray:
    """Distance (mm) from the centre to the skin at angles ``th``: superellipse, harmonics, nipple bump."""
    A = se.D - se.xc
    ph = th - se.tau
    up = ph < 0
    b = np.where(up, se.hu, se.hl)
    p = np.where(up, se.pu, se.pl)
    r = (np.abs(np.cos(ph) / A) ** p + np.abs(np.sin(ph) / b) ** p) ** (-1.0 / p)
    for k in range(4):
        r *= 1.0 + bs.harm_a[k] * np.cos((k + 2) * ph + bs.harm_p[k])
    sig = nip_w / A
    r += nip_h * np.exp(-0.5 * ((th - se.tau) / sig) ** 2)
    return r


class BreastGeometry:
    """Outline, nipple, pectoral muscle and lesion placement of one view.

    The pectoral muscle (MLO only) is a convex curve from ``(pect_x, 0)`` on the top
    edge to ``(0, pect_y)`` on the chest wall, bowed by ``kappa``.
    """

    def __init__(self, breast: BreastSpec, lat: str, view: str, rows_mm: float, cols_mm: float):
        self.view = view
        self.H = float(rows_mm)
        self.W = float(cols_mm)
        size = float(np.clip(breast.size, 0.5, 1.6))
        self.size = size
        bs = _draw_breast_shape(breast, lat, size)
        self.skin_mm = bs.skin_mm
        self.edge_r = bs.edge_r
        rv = rng("view-shape", breast.seed, lat, view)
        H, W = self.H, self.W
        nip_h = min(bs.nip_h, 0.08 * W)
        nip_w = min(bs.nip_w, 0.1 * H)
        D = max(min(92.0 * size * bs.depth_jitter, 0.84 * W - nip_h), 0.3 * W)
        se = _cc_superellipse(rv, H, D, size, bs) if view == "CC" else _mlo_superellipse(rv, H, W, D, nip_h)
        self.D = se.D
        self.xc, self.yc = float(se.xc), float(se.yc)
        self.th0 = -math.pi / 2
        self.dth = math.pi / (_OUTLINE_SAMPLES - 1)
        th = self.th0 + self.dth * np.arange(_OUTLINE_SAMPLES)
        r = _outline_radius(th, se, bs, nip_h, nip_w)
        self.lut = r.astype(np.float32)
        self.tau = se.tau
        self.nipple = (self.xc + self.lut_at(se.tau) * math.cos(se.tau), self.yc + self.lut_at(se.tau) * math.sin(se.tau))
        self.nip_h = nip_h
        # boundary polyline (for extents)
        self.bx = self.xc + r * np.cos(th)
        self.by = self.yc + r * np.sin(th)
        self.has_pect = view == "MLO"
        if self.has_pect:
            self._draw_pectoral(rv, th)

    def _draw_pectoral(self, rv: np.random.Generator, th: np.ndarray) -> None:
        upper = (th < self.tau) & (self.by < 0)
        x_top = float(self.bx[upper].max()) if upper.any() else 0.5 * self.D
        self.pect_x = x_top * rv.uniform(0.7, 0.9)
        self.pect_y = min(self.H * rv.uniform(0.4, 0.58), self.yc - 0.03 * self.H)
        self.kappa = rv.uniform(0.04, 0.16)

    def lut_at(self, theta) -> np.ndarray:
        """Outline radius (mm) at angle ``theta``, interpolated in the table."""
        return np.interp(theta, self.th0 + self.dth * np.arange(self.lut.size), self.lut)

    def rho(self, x, y) -> np.ndarray:
        """Normalised radius: < 1 inside the breast outline."""
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        th = np.arctan2(y - self.yc, x - self.xc)
        return np.hypot(x - self.xc, y - self.yc) / self.lut_at(th)

    def pect_sd(self, x, y) -> np.ndarray:
        """Approximate signed distance (mm) into the pectoral muscle: > 0 inside, < 0 outside."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.float32)
        if not self.has_pect:
            return np.full(np.broadcast(x, y).shape, -1e3, np.float32)
        u = x * np.float32(1.0 / self.pect_x)
        v = y * np.float32(1.0 / self.pect_y)
        f = u + v - 1.0 - np.float32(4.0 * self.kappa) * np.clip(u, 0, 1) * np.clip(v, 0, 1)
        g = np.float32(1.0 / math.sqrt(self.pect_x ** -2 + self.pect_y ** -2))
        sd = -f * g
        return np.where(u + v > 1.6, np.minimum(sd, np.float32(-5.0)), sd).astype(np.float32)

    def place(self, depth: float, offset: float, radius: float, skin_dist) -> tuple[float, float]:
        """Canonical (x, y) in mm of a lesion, kept inside the breast, off the skin and out of the pectoral."""
        xn, _ = self.nipple
        depth = float(np.clip(depth, 0.0, 1.0))
        offset = float(np.clip(offset, -1.0, 1.0))
        x = max(depth * xn, 1.0)
        y = self._across(x, offset)
        return self._walk_to_fit(x, y, radius, skin_dist)

    def _across(self, x: float, offset: float) -> float:
        """y (mm) at ``offset`` across the breast's run through column x that holds (or is nearest) the nipple row."""
        _, yn = self.nipple
        ys = np.arange(0.0, self.H, 0.5)
        inside = self.rho(np.full_like(ys, x), ys) < 1.0
        if self.has_pect:
            inside &= self.pect_sd(np.full_like(ys, x), ys) < 0
        if not inside.any():
            return yn
        yi = int(np.clip(round(yn / 0.5), 0, ys.size - 1))
        idx = np.nonzero(inside)[0]
        j = idx[np.argmin(np.abs(idx - yi))]
        lo = j
        while lo - 1 >= 0 and inside[lo - 1]:
            lo -= 1
        hi = j
        while hi + 1 < inside.size and inside[hi + 1]:
            hi += 1
        y_top, y_bot = ys[lo], ys[hi]
        y_mid = min(max(yn, y_top), y_bot)
        return y_mid + offset * 0.85 * ((y_mid - y_top) if offset < 0 else (y_bot - y_mid))

    def _walk_to_fit(self, x: float, y: float, radius: float, skin_dist) -> tuple[float, float]:
        """Step from (x, y) towards the central breast (below the pectoral) until the lesion fits; else the best try."""
        xn, yn = self.nipple
        ax, ay = 0.5 * xn, yn + (0.04 * self.H if self.has_pect else 0.0)
        need = radius + 3.0
        best, best_score = (x, y), -1e9
        for t in np.linspace(0.0, 1.0, 41):
            px, py = x + t * (ax - x), y + t * (ay - y)
            sd = float(skin_dist(px, py))
            ps = -float(self.pect_sd(px, py))
            xmargin = min(px, self.W - px, py, self.H - py)
            score = min(sd - need, ps - (radius + 2.0), xmargin - radius)
            if score >= 0:
                return px, py
            if score > best_score:
                best, best_score = (px, py), score
        return best
