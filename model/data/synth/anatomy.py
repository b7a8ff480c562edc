"""The breast's attenuation on the working grid: outline, tissue, strands, skin, nipple and pectoral muscle."""

from __future__ import annotations

import math

import cv2
import numpy as np

from model.data.synth.geometry import BreastGeometry
from model.data.synth.parenchyma import TissueParams, glandular_fraction, parenchymal_envelope, tissue_params
from model.data.synth.raster import smoothstep
from model.data.synth.seeding import rng
from model.data.synth.specs import BreastSpec
from model.data.synth.strands import strand_layer
from model.data.synth.tissue_texture import NORM_D, NippleFrame, TextureFields, texture_fields

GLAND_GAIN = 1.5       # extra attenuation of pure fibroglandular tissue relative to fat


def _outline_on_grid(geo: BreastGeometry, X: np.ndarray, Y: np.ndarray, work_mm: float):
    """Normalised radius rho (< 1 inside), the inside mask and the distance to the skin (mm) on the working grid."""
    dx = X - np.float32(geo.xc)
    dy = Y - np.float32(geo.yc)
    th = np.arctan2(dy, dx)
    r = np.sqrt(dx * dx + dy * dy)
    idx = ((th - np.float32(geo.th0)) * np.float32(1.0 / geo.dth)).astype(np.float32)
    rb = cv2.remap(geo.lut[None, :], idx, np.zeros_like(idx), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    rho = r / rb
    inside = rho < 1.0
    dist = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5) * np.float32(work_mm)
    dist = cv2.GaussianBlur(dist, (0, 0), 0.7)  # de-facet the L2 chamfer
    return rho, inside, dist


def _tissue(breast: BreastSpec, lat: str, P: TissueParams, fr: NippleFrame, fields: TextureFields, X: np.ndarray,
            geo: BreastGeometry, dist: np.ndarray, dn2: np.ndarray, pect_sd, pect) -> np.ndarray:
    """Glandular fraction g: gland in its envelope, faint texture in the fat, strands and vessels over both."""
    env = parenchymal_envelope(P, fields, X, geo.D, dist, dn2, pect_sd)
    g = glandular_fraction(P, fields, env)
    env_wide = smoothstep(dist, 0.8, 5.0)
    g += np.float32(0.03) * fields.mid * env_wide  # faint texture in the fat as well
    lines = strand_layer(breast, lat, P, fr)
    if pect is not None:
        lines *= np.float32(1.0) - pect
    g += lines * env_wide * (np.float32(1.0) - np.float32(0.35) * np.clip(g, 0.0, 1.0))
    return g


def _projected_attenuation(geo: BreastGeometry, skin_mu: float, dist: np.ndarray, dn2: np.ndarray,
                           g: np.ndarray) -> np.ndarray:
    """Attenuation of tissue of fraction g through the projected thickness.

    The compressed edge is a semicircle, so the thickness falls off towards the skin;
    the skin shell (thicker round the nipple) is seen tangentially at the edge.
    """
    R = np.float32(geo.edge_r)
    sk = np.float32(geo.skin_mm) * (np.float32(1.0) + np.float32(0.6) * np.exp(-dn2 * np.float32(1.0 / (2 * 15.0 ** 2))))
    dc = np.minimum(dist, R)
    outer = np.sqrt(np.maximum(np.float32(2.0) * R * dc - dc * dc, 0.0))
    di = np.clip(dc - sk, 0.0, None)
    inner = np.sqrt(np.maximum(np.float32(2.0) * R * di - di * di, 0.0))
    T_in = inner * np.float32(1.0 / R)
    L_skin = (outer - inner) * np.float32(1.0 / R)
    return T_in * (np.float32(1.0) + np.float32(GLAND_GAIN) * g) + np.float32(skin_mu) * L_skin


def _pect_fibres(breast: BreastSpec, lat: str, geo: BreastGeometry, wr: int, wc: int, work_mm: float) -> np.ndarray:
    """Unit-std streaky noise running along the pectoral muscle (fixed 0.4 mm grid, rotated into the view)."""
    cell = 0.4
    n = int(math.ceil(math.hypot(geo.H, geo.W) / cell)) + 8
    r = rng("pect-fibres", breast.seed, lat)
    z = r.standard_normal((n, n), dtype=np.float32)
    z = cv2.GaussianBlur(z, (0, 0), sigmaX=14.0, sigmaY=1.3, borderType=cv2.BORDER_REFLECT)
    z *= np.float32(1.0 / max(float(z.std()), 1e-6))
    th = math.atan2(geo.pect_y, -geo.pect_x)  # direction of the muscle border
    c, s_ = math.cos(th), math.sin(th)
    cx, cy = 0.5 * geo.W, 0.5 * geo.H
    sc = work_mm / cell
    M = np.array([[c * sc, s_ * sc, (c * (0.5 * work_mm - cx) + s_ * (0.5 * work_mm - cy)) / cell + n / 2],
                  [-s_ * sc, c * sc, (-s_ * (0.5 * work_mm - cx) + c * (0.5 * work_mm - cy)) / cell + n / 2]])
    return cv2.warpAffine(z, M, (wc, wr), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def _pectoral_muscle(breast: BreastSpec, lat: str, geo: BreastGeometry, P: TissueParams, fields: TextureFields,
                     pect_sd: np.ndarray, pect: np.ndarray, wr: int, wc: int, work_mm: float) -> np.ndarray:
    """Attenuation of the pectoral muscle: brighter deeper in, with fibres along its border."""
    grad = smoothstep(pect_sd, 0.0, 25.0)
    fib = _pect_fibres(breast, lat, geo, wr, wc, work_mm)
    return pect * np.float32(P.pect_a) * (np.float32(0.5) + np.float32(0.5) * grad) * \
        (np.float32(1.0) + np.float32(0.05) * fib + np.float32(0.05) * fields.iso)


def anatomy(breast: BreastSpec, lat: str, geo: BreastGeometry, wr: int, wc: int, work_mm: float):
    """Attenuation A (float32), normalised radius rho and skin distance (mm) on the working grid."""
    P = tissue_params(breast, lat)
    xs = ((np.arange(wc, dtype=np.float32) + 0.5) * work_mm)
    ys = ((np.arange(wr, dtype=np.float32) + 0.5) * work_mm)
    X = np.broadcast_to(xs[None, :], (wr, wc))
    Y = np.broadcast_to(ys[:, None], (wr, wc))
    rho, inside, dist = _outline_on_grid(geo, X, Y, work_mm)
    xn, yn = geo.nipple
    fr = NippleFrame(wr, wc, work_mm, xn, yn, NORM_D / geo.D, (breast.seed, lat))
    fields = texture_fields(fr, P.cone0, P.cone1)
    dn2 = ((X - np.float32(xn)) ** 2 + (Y - np.float32(yn)) ** 2)
    pect_sd = pect = None
    if geo.has_pect:
        pect_sd = geo.pect_sd(X, Y) + np.float32(1.0) * fields.env  # gently wavy anterior border
        pect = smoothstep(pect_sd, -1.5, 2.0)
    g = _tissue(breast, lat, P, fr, fields, X, geo, dist, dn2, pect_sd, pect)
    A = _projected_attenuation(geo, P.skin_mu, dist, dn2, g)
    A += np.float32(0.25) * np.exp(-dn2 * np.float32(1.0 / (2 * 4.0 ** 2)))  # nipple soft tissue
    if pect is not None:
        A += _pectoral_muscle(breast, lat, geo, P, fields, pect_sd, pect, wr, wc, work_mm)
    A *= inside
    return A.astype(np.float32, copy=False), rho.astype(np.float32, copy=False), dist
