"""Tissue noise fields in breast-normalised coordinates around the nipple, so CC and MLO share one anatomy."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from model.data.synth.random_fields import Spectrum, bandpass, gauss_field, powerlaw

NORM_D = 100.0          # breast-normalised coordinates: "mm" of a 100 mm deep breast

# extent and origin of the Cartesian fields in normalised mm (a from the nipple back, b down)
_EXT_A, _EXT_B = 230.0, 420.0
_A0, _B0 = -40.0, -210.0
# log-polar fields: log1p(s / _S0) spans _EXT_U units
_S0 = 20.0
_EXT_U = 3.4


@dataclass(frozen=True)
class NippleFrame:
    """The working grid of one view and the breast-normalised frame centred on its nipple."""

    wr: int                 # working grid rows
    wc: int                 # working grid columns
    work_mm: float          # working pixel size
    xn: float               # nipple x (mm, canonical frame)
    yn: float               # nipple y
    k: float                # normalised mm per view mm (NORM_D / breast depth)
    seed_parts: tuple       # (breast seed, laterality)


@dataclass(frozen=True)
class TextureFields:
    """Unit-std noise fields on the working grid, and the retroareolar cone the streaks live in."""

    iso: np.ndarray         # isotropic power-law texture (beta 3): where the gland is
    mid: np.ndarray         # finer power-law texture: gland thickness variations, faint fat texture
    lob: np.ndarray         # band-pass: fat lobules
    env: np.ndarray         # very low frequency: modulates the envelope, waves the pectoral border
    streak: np.ndarray      # anisotropic in log-polar coordinates: streaks converging on the nipple
    cone: np.ndarray        # 0..1, a cone behind the nipple widening towards the chest wall


def _cartesian_field(fr: NippleFrame, name: str, spec: Spectrum) -> np.ndarray:
    """A field on a fixed normalised-mm grid (resolution capped by the spectrum), warped onto the working grid."""
    work_mm, k = fr.work_mm, fr.k
    sp_a = max(work_mm * k, 0.5 / spec.fmax_x)
    sp_b = max(work_mm * k, 0.5 / spec.fmax_y)
    nca, ncb = max(8, int(round(_EXT_A / sp_a))), max(8, int(round(_EXT_B / sp_b)))
    sa, sb = _EXT_A / nca, _EXT_B / ncb
    # affine from working pixel (j, i) to field (col, row)
    Mc = np.array([[-work_mm * k / sa, 0.0, (fr.xn * k - 0.5 * work_mm * k - _A0) / sa],
                   [0.0, work_mm * k / sb, ((0.5 * work_mm - fr.yn) * k - _B0) / sb]], np.float64)
    f = gauss_field(fr.seed_parts + (name,), ncb, nca, _EXT_B, _EXT_A, spec)
    return cv2.warpAffine(f, Mc, (fr.wc, fr.wr), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_WRAP)


def _logpolar_coords(fr: NippleFrame, cone0: float, cone1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-polar map coordinates (angle, log radius; both 0..1) around the nipple, and the retroareolar cone.

    Large grids are computed at half resolution and interpolated up.
    """
    wr, wc, work_mm = fr.wr, fr.wc, fr.work_mm
    half = 2 if wr * wc > 1_500_000 else 1
    hr, hc = (wr + half - 1) // half, (wc + half - 1) // half
    an = (np.float32(fr.xn) - ((np.arange(hc, dtype=np.float32) + 0.5) * work_mm * half))[None, :] * np.float32(fr.k)
    bn = (((np.arange(hr, dtype=np.float32) + 0.5) * work_mm * half) - np.float32(fr.yn))[:, None] * np.float32(fr.k)
    s = np.sqrt(an * an + bn * bn)
    psi = np.arctan2(bn, an)
    mx = ((psi + np.float32(math.pi)) * np.float32(1.0 / (2 * math.pi))).astype(np.float32)
    my = (np.log1p(s * np.float32(1.0 / _S0)) * np.float32(1.0 / _EXT_U)).astype(np.float32)
    cone_w = np.float32(cone0) + np.float32(cone1) * np.maximum(an, 0.0)
    cone = np.exp(-(bn / cone_w) ** 2)
    if half > 1:
        mx = cv2.resize(mx, (wc, wr), interpolation=cv2.INTER_LINEAR)
        my = cv2.resize(my, (wc, wr), interpolation=cv2.INTER_LINEAR)
        cone = cv2.resize(cone, (wc, wr), interpolation=cv2.INTER_LINEAR)
    else:
        cone = np.broadcast_to(cone, (wr, wc))
    return mx, my, cone


def _logpolar_field(fr: NippleFrame, name: str, spec: Spectrum, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    """A field periodic in angle, sampled through the log-polar map: its streaks converge on the nipple."""
    n_psi = 2 * int(math.ceil(2 * math.pi * spec.fmax_x))
    n_u = 2 * int(math.ceil(_EXT_U * spec.fmax_y))
    f = gauss_field(fr.seed_parts + (name,), n_u, n_psi, _EXT_U, 2 * math.pi, spec)
    return cv2.remap(f, mx * np.float32(n_psi), my * np.float32(n_u), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def texture_fields(fr: NippleFrame, cone0: float, cone1: float) -> TextureFields:
    """All tissue noise fields of one view; the coefficients depend on the breast seed, not the view."""
    iso = _cartesian_field(fr, "iso", powerlaw(3.0, 1 / 50.0, 0.6))
    mid = _cartesian_field(fr, "mid", powerlaw(3.0, 1 / 10.0, 1.5))
    lob = _cartesian_field(fr, "lob", bandpass(1 / 6.0, 0.5))
    env = _cartesian_field(fr, "env", powerlaw(4.0, 1 / 60.0, 0.05))
    mx, my, cone = _logpolar_coords(fr, cone0, cone1)
    streak = _logpolar_field(fr, "streak", powerlaw(2.6, 0.5, 30.0, ax=1.0, ay=3.0), mx, my)
    return TextureFields(iso=iso, mid=mid, lob=lob, env=env, streak=streak, cone=cone)
