"""Shared preprocessing: breast region, chest wall, equalization, and the inverse mapping."""

import numpy as np
import pytest

from model.data.dicom_io import read_image
from model.data.preprocess import PreprocessConfig, equalize, find_breast_region, prepare
from model.data.study_index import build_index


def _synthetic_breast(side: str) -> tuple[np.ndarray, np.ndarray]:
    """A half-disc breast against the chest wall on ``side``, a bright label and a border strip."""
    rows, cols = 400, 260
    yy, xx = np.mgrid[:rows, :cols]
    wall_x = 0 if side == "left" else cols - 1
    breast = (yy - rows / 2) ** 2 / 180**2 + (xx - wall_x) ** 2 / 200**2 <= 1
    img = np.full((rows, cols), 600, np.uint16)
    img[breast] = 20000 + (np.sin(yy[breast] / 7.0) * 3000).astype(np.uint16)
    label_x = slice(cols - 60, cols - 20) if side == "left" else slice(20, 60)
    img[10:30, label_x] = 62000  # burned-in film label
    img[:, :3] = 60000 if side == "right" else img[:, :3]  # a bright scanner strip at the nipple side
    img[:, -3:] = 60000 if side == "left" else img[:, -3:]
    return img, breast


@pytest.mark.parametrize("side", ["left", "right"])
def test_breast_region_drops_labels_and_strips(side):
    img, breast = _synthetic_breast(side)
    region = find_breast_region(img)
    assert region.chest_wall_side == side
    overlap = (region.mask & breast).sum() / breast.sum()
    assert overlap > 0.97
    assert not region.mask[10:30].any(axis=0)[(slice(200, 240) if side == "left" else slice(20, 60))].any()
    assert region.mask.sum() < breast.sum() * 1.05


@pytest.mark.parametrize("side", ["left", "right"])
def test_round_trip_puts_masks_back_on_the_original_grid(side):
    img, breast = _synthetic_breast(side)
    lesion = np.zeros(img.shape, bool)
    lesion[150:190, 40:90] = True if side == "left" else False
    lesion[150:190, 170:220] = True if side == "right" else lesion[150:190, 170:220]
    working, geometry, _ = prepare(img, (0.2, 0.2), PreprocessConfig(working_spacing_mm=0.4))
    assert geometry.flipped == (side == "right")
    assert working.shape == geometry.working_shape
    assert abs(geometry.scale - 0.5) < 1e-9
    there = geometry.to_working(lesion)
    back = geometry.to_original(there)
    dice = 2 * (back & lesion).sum() / (back.sum() + lesion.sum())
    assert back.shape == img.shape and dice > 0.95
    # the chest wall is on the left of the working image, whatever the side of the original
    cols = working.shape[1]
    assert working[:, : cols // 5].mean() > working[:, -cols // 5 :].mean()
    # points map both ways
    x, y = geometry.point_to_original(*geometry.point_to_working(123.0, 77.0))
    assert abs(x - 123) < 1e-6 and abs(y - 77) < 1e-6


def test_missing_spacing_uses_the_documented_default():
    img, _ = _synthetic_breast("left")
    _, geometry, _ = prepare(img, None)
    assert geometry.spacing_mm == 0.05 and not geometry.spacing_known
    _, geometry, _ = prepare(img, (0.07, 0.07))
    assert geometry.spacing_mm == 0.07 and geometry.spacing_known


def test_equalization_flattens_the_breast_histogram():
    rng = np.random.default_rng(0)
    pixels = (rng.gamma(2.0, 3000, (200, 200))).astype(np.uint16)
    mask = np.zeros_like(pixels, bool)
    mask[20:180, 20:180] = True
    out = equalize(pixels, mask)
    assert out.dtype == np.float32 and out[~mask].max() == 0
    hist, _ = np.histogram(out[mask], bins=10, range=(0, 1))
    assert hist.min() > 0.07 * mask.sum()  # roughly uniform
    assert np.all(np.diff(out[mask][np.argsort(pixels[mask], kind="stable")]) >= -1e-6)  # monotone


@pytest.mark.parametrize("value", [0, 1, 77, 246, 255])
@pytest.mark.parametrize("shape", [(1000, 700), (777, 555)])
def test_a_constant_image_is_flat_after_resampling_not_an_error(value, shape):
    """A blank PNG (one grey level) resampled to a coarse working grid leaves float noise a few ULPs wide:
    equalization keeps it flat instead of failing in np.histogram or stretching the noise."""
    working, geometry, _ = prepare(np.full(shape, value, np.uint8), None, PreprocessConfig(working_spacing_mm=0.4))
    assert geometry.scale < 1
    assert np.unique(working).size <= 2 and working.max() <= 0.5


def test_equalization_maps_two_levels_to_the_ends_and_keeps_real_contrast_however_small():
    pixels = np.full((40, 40), 1000.0, np.float32)
    pixels[:, 20:] = 1001.0  # one grey level apart in a 16-bit image: real contrast, not noise
    mask = np.ones(pixels.shape, bool)
    out = equalize(pixels, mask)
    assert out[:, :20].max() == 0 and out[:, 20:].min() == 1


def test_demo_views_both_lateralities(demo_root):
    index = build_index(demo_root, workers=1)
    sides = set()
    for image in index.images[:8]:
        m = read_image(image.path)
        working, geometry, region = prepare(m.pixels, None)
        sides.add(region.chest_wall_side)
        assert working.shape == geometry.working_shape and working.max() <= 1
        assert region.mask.mean() > 0.2
    assert sides == {"left", "right"}
