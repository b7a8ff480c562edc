"""Exposure of the film: attenuation to brightness through a saturating film curve, grain and fog."""

from __future__ import annotations

import math

import cv2
import numpy as np

_FILM_V = 0.95          # brightness reached at infinite attenuation (fraction of the scale)
_FILM_A0 = 2.34         # attenuation scale of the film curve (fat of full thickness == 1.0)
_SCALE = 61000.0        # 16-bit counts per unit brightness
_GRAIN_SIGMA = 0.6      # blur (pixels) of the film grain


def _film_curve(A: np.ndarray) -> np.ndarray:
    """Brightness 0.._FILM_V = V * (1 - exp(-A / a0)), computed in place in ``A``."""
    v = A
    v *= np.float32(-1.0 / _FILM_A0)
    np.exp(v, out=v)
    v *= np.float32(-_FILM_V)
    v += np.float32(_FILM_V)
    return v


def _add_grain(v: np.ndarray, rf: np.random.Generator) -> np.ndarray:
    """Counts of the film with grain: brightness-dependent plus a constant part, blurred a little; consumes ``v``."""
    rows, cols = v.shape
    grain = rf.standard_normal((rows, cols), dtype=np.float32)
    gs = _GRAIN_SIGMA
    grain = cv2.GaussianBlur(grain, (0, 0), gs)
    k1 = cv2.getGaussianKernel(int(2 * math.ceil(3 * gs) + 1), gs)
    unit = 1.0 / float((k1 ** 2).sum())  # back to unit std after the blur
    img = grain * v
    img *= np.float32(420.0 * unit)
    grain *= np.float32(120.0 * unit)
    img += grain
    del grain
    v *= np.float32(_SCALE)
    img += v
    return img


def _add_fog(img: np.ndarray, rf: np.random.Generator) -> None:
    """Film fog: a base level with a gentle gradient across the film, in place."""
    rows, cols = img.shape
    fog = rf.uniform(500.0, 1300.0)
    gy, gx = rf.uniform(-1.0, 1.0) * 0.3 * fog, rf.uniform(-1.0, 1.0) * 0.25 * fog
    img += np.linspace(-0.5, 0.5, rows, dtype=np.float32)[:, None] * np.float32(gy) + np.float32(fog)
    img += np.linspace(-0.5, 0.5, cols, dtype=np.float32)[None, :] * np.float32(gx)


def expose(A: np.ndarray, rf: np.random.Generator) -> np.ndarray:
    """Film counts (float32, before clipping) for attenuation ``A``, which is used up (overwritten)."""
    img = _add_grain(_film_curve(A), rf)
    _add_fog(img, rf)
    return img
