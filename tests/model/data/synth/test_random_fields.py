"""The tissue noise fields (model.data.synth.random_fields): unit std, seeded, the same anatomy at every grid size."""

from __future__ import annotations

import numpy as np

from model.data.synth.random_fields import bandpass, gauss_field, powerlaw


def test_field_is_float32_unit_std_and_seeded():
    spec = powerlaw(3.0, 1 / 50.0, 0.6)
    a = gauss_field((7, "L", "iso"), 96, 64, 420.0, 230.0, spec)
    assert a.dtype == np.float32 and a.shape == (96, 64)
    assert abs(float(a.std()) - 1.0) < 1e-4
    assert np.array_equal(a, gauss_field((7, "L", "iso"), 96, 64, 420.0, 230.0, spec))
    assert not np.array_equal(a, gauss_field((7, "R", "iso"), 96, 64, 420.0, 230.0, spec))
    assert not np.array_equal(a, gauss_field((8, "L", "iso"), 96, 64, 420.0, 230.0, spec))


def test_coarse_field_is_the_low_frequency_part_of_a_fine_one():
    """Renders at different pixel sizes show the same anatomy: the coarse grid's Fourier coefficients are the
    fine grid's, up to the normalisation to unit std."""
    spec = bandpass(1 / 40.0, 0.8)
    ext_r, ext_c = 200.0, 160.0
    fine = gauss_field(("x",), 128, 96, ext_r, ext_c, spec)
    coarse = gauss_field(("x",), 64, 48, ext_r, ext_c, spec)
    F = np.fft.rfft2(fine.astype(np.float64)) / fine.size
    C = np.fft.rfft2(coarse.astype(np.float64)) / coarse.size
    # frequencies both grids hold, Nyquist row and column of the coarse grid left out
    ky = np.r_[0:32, -31:0]
    kx = np.arange(24)
    f_low = F[ky][:, kx]
    c_low = C[ky][:, kx]
    big = np.abs(f_low) > 1e-3 * np.abs(f_low).max()
    assert big.sum() > 20
    ratio = c_low[big] / f_low[big]
    scale = float(np.median(ratio.real))
    assert scale > 0
    assert np.allclose(ratio, scale, rtol=1e-3, atol=1e-4)
