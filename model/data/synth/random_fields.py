"""Periodic Gaussian random fields with a chosen amplitude spectrum, identical across pixel sizes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import fft as _sfft

from model.data.synth.seeding import seed_int


class Spectrum:
    """An amplitude spectrum ``amp(fy, fx)`` (cycles per unit) with the highest useful frequency per axis."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], fmax_y: float, fmax_x: float):
        self.fn = fn
        self.fmax_y = fmax_y
        self.fmax_x = fmax_x


def powerlaw(beta: float, f0: float, fc: float, ax: float = 1.0, ay: float = 1.0) -> Spectrum:
    """Amplitude ~ f^(-beta/2), flattened below f0 and rolled off above fc (anisotropic via ax, ay)."""
    def fn(fy, fx):
        f2 = (fx * ax) ** 2 + (fy * ay) ** 2
        return (f2 + f0 * f0) ** (-beta / 4.0) * np.exp(-f2 / (fc * fc))
    return Spectrum(fn, 1.9 * fc / ay, 1.9 * fc / ax)


def bandpass(fp: float, width: float, ax: float = 1.0, ay: float = 1.0) -> Spectrum:
    """Log-normal band-pass amplitude around fp (cycles/unit)."""
    def fn(fy, fx):
        f = np.sqrt((fx * ax) ** 2 + (fy * ay) ** 2) + 1e-9
        return np.exp(-0.5 * (np.log(f / fp) / width) ** 2)
    hi = fp * math.exp(2.6 * width)
    return Spectrum(fn, hi / ay, hi / ax)


def gauss_field(seed_parts: tuple, n_rows: int, n_cols: int, ext_rows: float, ext_cols: float,
                spec: Spectrum) -> np.ndarray:
    """Periodic real Gaussian random field (float32, unit std) with amplitude spectrum ``spec``.

    The field covers ``ext_rows x ext_cols`` units with ``n_rows x n_cols`` samples.
    The random coefficient of frequency (ky, kx) depends only on the seed and (ky, kx)
    (one generator per ky row, drawn in kx order), so a coarser grid of the same
    extent holds exactly the low-frequency part of a finer one: renders at different
    pixel sizes show the same anatomy.
    """
    nc = n_cols // 2 + 1
    ky = np.fft.fftfreq(n_rows, 1.0 / n_rows).round().astype(np.int64)
    fy = (ky / float(ext_rows)).astype(np.float32)[:, None]
    fx = (np.arange(nc) / float(ext_cols)).astype(np.float32)[None, :]
    amp = spec.fn(fy, fx).astype(np.float32)
    amp[0, 0] = 0.0
    keep = amp > np.float32(1e-3) * amp.max()
    last = np.where(keep.any(1), nc - np.argmax(keep[:, ::-1], axis=1), 0)
    coef = np.zeros((n_rows, nc), np.complex64)
    ints = [seed_int(p) for p in ("field",) + tuple(seed_parts)]
    for i in range(n_rows):
        m = int(last[i])
        if m == 0:
            continue
        r = np.random.default_rng(np.random.SeedSequence(ints + [int(ky[i]) & 0xFFFFFFFF]))
        z = r.standard_normal(2 * m, dtype=np.float32).view(np.complex64)
        coef[i, :m] = z * amp[i, :m]
    out = _sfft.irfft2(coef, s=(n_rows, n_cols), workers=2).astype(np.float32, copy=False)
    sd = float(out.std())
    if sd > 0:
        out *= np.float32(1.0 / sd)
    return out
