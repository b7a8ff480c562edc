"""Tests of the synthetic film-mammogram renderer (model.data.synth.phantom).

Rendered at 0.4 mm pixels (about 575 x 362) so that the whole file runs in a few seconds.
"""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from model.data.synth.geometry import BreastGeometry
from model.data.synth.phantom import default_shape, render_view
from model.data.synth.specs import BreastSpec, LesionSpec, RenderedView

PX = 0.4


def _mass(subtlety: int = 4, malignant: bool = False, size: float = 14.0, depth: float = 0.5, offset: float = 0.0,
          seed: int = 1, shape: str = "OVAL", margins: str = "CIRCUMSCRIBED") -> LesionSpec:
    return LesionSpec("mass", malignant, size, subtlety, depth, offset, shape=shape, margins=margins, seed=seed)


def _calc(malignant: bool, calc_type: str, distribution: str = "CLUSTERED", size: float = 10.0, subtlety: int = 5,
          seed: int = 3, depth: float = 0.5, offset: float = 0.0) -> LesionSpec:
    return LesionSpec("calcification", malignant, size, subtlety, depth, offset, calc_type=calc_type,
                      calc_distribution=distribution, seed=seed)


def _render(breast=None, lat="L", view="CC", lesions=(), **kw) -> RenderedView:
    breast = breast or BreastSpec(density=2, size=1.0, seed=11)
    kw.setdefault("pixel_mm", PX)
    return render_view(breast, lat, view, list(lesions), **kw)


def _ring_contrast(img: np.ndarray, mask: np.ndarray, breast: np.ndarray) -> float:
    """(mean inside the lesion - mean of a ring around it) / std of the ring."""
    area = mask.sum()
    r = max(3, int(round(np.sqrt(area / np.pi))))
    k_in = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * (r // 2) + 1,) * 2)
    k_out = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * (r + r // 2) + 1,) * 2)
    m8 = mask.astype(np.uint8)
    ring = (cv2.dilate(m8, k_out) > 0) & ~(cv2.dilate(m8, k_in) > 0) & breast
    f = img.astype(np.float64)
    return float((f[mask].mean() - f[ring].mean()) / (f[ring].std() + 1e-9))


# ---------------------------------------------------------------------------
# basic contract


def test_dtype_shape_portrait_and_fields():
    les = [_mass(), _calc(True, "PLEOMORPHIC")]
    rv = _render(lesions=les)
    assert isinstance(rv, RenderedView)
    assert rv.image.dtype == np.uint16
    assert rv.image.shape == default_shape(PX)
    rows, cols = rv.image.shape
    assert rows > cols, "portrait like CBIS-DDSM"
    assert 500 <= rows <= 650 and 320 <= cols <= 420
    assert rv.breast_mask.dtype == bool and rv.breast_mask.shape == rv.image.shape
    assert len(rv.masks) == len(les)
    for m in rv.masks:
        assert m.dtype == bool and m.shape == rv.image.shape
    assert rv.chest_wall_side == "left"


def test_default_full_size_shape():
    rows, cols = default_shape(0.05)
    assert 4400 <= rows <= 4800 and 2700 <= cols <= 3100
    assert 3000 <= rows <= 5500 and 1800 <= cols <= 3700


def test_explicit_shape_is_honoured():
    rv = _render(shape=(500, 300))
    assert rv.image.shape == (500, 300)
    assert rv.breast_mask.any()


def test_deterministic_for_same_inputs():
    les = [_mass(malignant=True, shape="IRREGULAR", margins="SPICULATED"), _calc(False, "COARSE")]
    a = _render(lat="R", view="MLO", lesions=les, seed=5)
    b = _render(lat="R", view="MLO", lesions=les, seed=5)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.breast_mask, b.breast_mask)
    for ma, mb in zip(a.masks, b.masks):
        assert np.array_equal(ma, mb)


def test_different_seeds_give_different_images():
    base = _render(seed=1)
    film = _render(seed=2)
    anatomy = _render(breast=BreastSpec(density=2, size=1.0, seed=12), seed=1)
    assert not np.array_equal(base.image, film.image)
    assert not np.array_equal(base.image, anatomy.image)
    # a different anatomy is more than a different film grain
    diff_film = np.abs(base.image.astype(float) - film.image.astype(float))[base.breast_mask].mean()
    diff_anat = np.abs(base.image.astype(float) - anatomy.image.astype(float))[base.breast_mask].mean()
    assert diff_anat > 2 * diff_film


def test_left_and_right_breast_of_one_spec_differ():
    b = BreastSpec(density=3, size=1.0, seed=21)
    left = _render(breast=b, lat="L", chest_wall_side="left", label=False, seed=0)
    right = _render(breast=b, lat="R", chest_wall_side="left", label=False, seed=0)
    assert not np.array_equal(left.image, right.image)


def test_intensity_ranges_like_a_film_scan():
    rv = _render(breast=BreastSpec(density=3, size=1.0, seed=4), label=False)
    img = rv.image.astype(np.float64)
    bg = img[~rv.breast_mask]
    tissue = img[rv.breast_mask]
    assert 100 < np.median(bg) < 2500, "film background: dark but not zero"
    assert 12000 < np.median(tissue) < 48000
    assert tissue.mean() > bg.mean() + 10000, "breast brighter than background"


def test_label_is_burned_in_bright():
    les: list[LesionSpec] = []
    with_label = _render(lesions=les, seed=9, label=True)
    without = _render(lesions=les, seed=9, label=False)
    bright_with = int((with_label.image >= 56000).sum())
    bright_without = int((without.image >= 56000).sum())
    assert bright_with > bright_without + 30
    # the label does not sit on the breast
    changed = with_label.image != without.image
    assert (changed & with_label.breast_mask).sum() < 0.01 * changed.sum() + 5


# ---------------------------------------------------------------------------
# masks and placement


@pytest.mark.parametrize("view", ["CC", "MLO"])
@pytest.mark.parametrize("depth,offset", [(0.05, -1.0), (0.1, 0.9), (0.5, 0.0), (0.95, 0.3), (0.3, -0.7), (1.0, 1.0)])
def test_masks_inside_breast_and_not_empty(view, depth, offset):
    les = [
        _mass(size=22.0, depth=depth, offset=offset, seed=7, malignant=True, shape="IRREGULAR", margins="SPICULATED"),
        _calc(True, "FINE_LINEAR_BRANCHING", "LINEAR", size=15.0, depth=depth, offset=-offset, seed=8),
    ]
    rv = _render(lat="R", view=view, lesions=les)
    for m in rv.masks:
        assert m.any()
        assert not (m & ~rv.breast_mask).any()
        # away from the skin: the mask does not touch the breast outline
        edge = rv.breast_mask & ~(cv2.erode(rv.breast_mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
        assert not (m & edge).any()


def test_lesions_stay_out_of_the_pectoral_muscle():
    b = BreastSpec(density=2, size=1.0, seed=31)
    rows, cols = default_shape(PX)
    geo = BreastGeometry(b, "L", "MLO", rows * PX, cols * PX)
    les = [_mass(size=12.0, depth=d, offset=-0.95, seed=d_i) for d_i, d in enumerate((0.05, 0.15, 0.3))]
    rv = _render(breast=b, lat="L", view="MLO", lesions=les, chest_wall_side="left")
    for m in rv.masks:
        ys, xs = np.nonzero(m)
        sd = geo.pect_sd((xs + 0.5) * PX, (ys + 0.5) * PX)
        assert (sd < 0).all(), "mask pixels inside the pectoral muscle"


def test_calcification_mask_outlines_the_whole_cluster():
    rv = _render(breast=BreastSpec(density=1, size=1.0, seed=2), lesions=[_calc(True, "PLEOMORPHIC", size=10.0)],
                 label=False)
    m = rv.masks[0]
    n, _ = cv2.connectedComponents(m.astype(np.uint8))
    assert n - 1 == 1, "one smooth outline, not one blob per speck"
    area_mm2 = m.sum() * PX * PX
    assert 30 < area_mm2 < 600


def test_same_lesion_in_cc_and_mlo():
    b = BreastSpec(density=2, size=1.0, seed=41)
    les = [_mass(size=16.0, depth=0.55, offset=0.3, seed=99, shape="LOBULATED", margins="CIRCUMSCRIBED")]
    cc = _render(breast=b, lat="L", view="CC", lesions=les)
    mlo = _render(breast=b, lat="L", view="MLO", lesions=les)
    a_cc, a_mlo = cc.masks[0].sum(), mlo.masks[0].sum()
    assert a_cc > 0 and abs(a_cc - a_mlo) / a_cc < 0.15
    expected = np.pi * (16.0 / 2 / PX) ** 2
    assert 0.4 * expected < a_cc < 1.2 * expected


# ---------------------------------------------------------------------------
# anatomy


def test_chest_wall_side_is_honoured():
    b = BreastSpec(density=2, size=1.0, seed=5)
    for lat in ("L", "R"):
        for view in ("CC", "MLO"):
            for side in ("left", "right"):
                rv = _render(breast=b, lat=lat, view=view, chest_wall_side=side)
                bm = rv.breast_mask
                cols = bm.shape[1]
                left_mass = bm[:, : cols // 2].sum()
                right_mass = bm[:, cols // 2:].sum()
                assert rv.chest_wall_side == side
                if side == "left":
                    assert left_mass > 1.3 * right_mass
                    assert bm[:, 0].any() and not bm[:, -1].any()
                else:
                    assert right_mass > 1.3 * left_mass
                    assert bm[:, -1].any() and not bm[:, 0].any()


def test_default_chest_wall_side_follows_film_convention():
    assert _render(lat="R").chest_wall_side == "right"
    assert _render(lat="L").chest_wall_side == "left"


@pytest.mark.parametrize("side", ["left", "right"])
def test_mlo_has_bright_pectoral_corner_cc_does_not(side):
    b = BreastSpec(density=1, size=1.0, seed=8)
    cc = _render(breast=b, lat="L", view="CC", chest_wall_side=side, label=False)
    mlo = _render(breast=b, lat="L", view="MLO", chest_wall_side=side, label=False)
    rows, cols = mlo.image.shape
    r1, w = int(0.12 * rows), int(0.08 * cols)
    cs = slice(0, w) if side == "left" else slice(cols - w, cols)
    corner_mlo = mlo.image[:r1, cs].astype(float)
    corner_cc = cc.image[:r1, cs].astype(float)
    breast_mean_mlo = mlo.image[mlo.breast_mask].astype(float).mean()
    assert corner_mlo.mean() > breast_mean_mlo + 4000, "bright pectoral muscle in the upper chest-wall corner"
    assert corner_mlo.mean() > corner_cc.mean() + 8000
    # the muscle is on the chest-wall side, not the other upper corner
    other = slice(cols - w, cols) if side == "left" else slice(0, w)
    assert mlo.breast_mask[:r1, cs].mean() > 0.95
    assert mlo.breast_mask[:r1, other].mean() < 0.05


def test_density_raises_breast_brightness():
    means = {}
    for d in (1, 4):
        vals = []
        for s in range(3):
            rv = _render(breast=BreastSpec(density=d, size=1.0, seed=100 + s), label=False)
            vals.append(rv.image[rv.breast_mask].astype(float).mean())
        means[d] = np.mean(vals)
    assert means[4] > means[1] + 3000


def test_skin_line_and_darker_periphery():
    rv = _render(breast=BreastSpec(density=3, size=1.0, seed=6), label=False)
    bm = rv.breast_mask.astype(np.uint8)
    dist = cv2.distanceTransform(bm, cv2.DIST_L2, 5) * PX  # mm from the skin
    img = rv.image.astype(float)
    rim = img[(dist > 0) & (dist <= 2.0)].mean()
    just_inside = img[(dist > 3.0) & (dist <= 6.0)].mean()
    core = img[dist > 25.0].mean()
    assert core > just_inside + 2000, "thinner, darker tissue near the skin"
    assert rim > img[~rv.breast_mask].mean() + 5000


# ---------------------------------------------------------------------------
# lesion visibility and calcification morphology


def test_subtlety_and_density_drive_visibility():
    obvious, subtle = [], []
    for s in range(4):
        les5 = [_mass(subtlety=5, size=14.0, seed=50 + s, depth=0.5, offset=0.0)]
        les1 = [_mass(subtlety=1, size=14.0, seed=50 + s, depth=0.5, offset=0.0)]
        fatty = _render(breast=BreastSpec(density=1, size=1.0, seed=60 + s), lesions=les5, label=False)
        dense = _render(breast=BreastSpec(density=4, size=1.0, seed=60 + s), lesions=les1, label=False)
        obvious.append(_ring_contrast(fatty.image, fatty.masks[0], fatty.breast_mask))
        subtle.append(_ring_contrast(dense.image, dense.masks[0], dense.breast_mask))
    assert np.mean(obvious) > 2.0
    assert np.mean(subtle) < 1.0
    assert np.mean(obvious) > 3 * max(np.mean(subtle), 0.1)


def test_mass_is_additive_not_a_flat_disc():
    rv = _render(breast=BreastSpec(density=3, size=1.0, seed=70), lesions=[_mass(subtlety=5, size=20.0, seed=3)],
                 label=False)
    inside = rv.image[rv.masks[0]].astype(float)
    assert inside.std() > 300, "tissue texture shows through the mass"


def _speck_stats(rv: RenderedView, pixel_mm: float) -> tuple[int, float]:
    img = rv.image.astype(np.float32)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(1.5 / pixel_mm) + 1,) * 2)
    tophat = cv2.morphologyEx(img, cv2.MORPH_TOPHAT, k)
    ref = tophat[rv.breast_mask & ~rv.masks[0]]
    thr = float(np.percentile(ref, 99.5)) + 1500.0
    specks = ((tophat > thr) & rv.masks[0]).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(specks, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(float) * pixel_mm * pixel_mm
    return n - 1, float(areas.mean()) if areas.size else 0.0


def test_malignant_calcifications_more_and_smaller_than_benign_coarse():
    pm = 0.1
    breast = BreastSpec(density=1, size=0.8, seed=80)
    counts_m, counts_b, size_m, size_b = [], [], [], []
    for s in range(2):
        mal = render_view(breast, "L", "CC", [_calc(True, "PLEOMORPHIC", size=10.0, seed=200 + s)], pixel_mm=pm,
                          shape=(1300, 850), label=False, seed=s)
        ben = render_view(breast, "L", "CC", [_calc(False, "COARSE", size=10.0, seed=300 + s)], pixel_mm=pm,
                          shape=(1300, 850), label=False, seed=s)
        n_m, a_m = _speck_stats(mal, pm)
        n_b, a_b = _speck_stats(ben, pm)
        counts_m.append(n_m)
        counts_b.append(n_b)
        size_m.append(a_m)
        size_b.append(a_b)
    assert min(counts_m) >= 5, "a cluster has at least five specks"
    assert np.mean(counts_m) > 1.5 * np.mean(counts_b)
    assert np.mean(size_m) < 0.5 * np.mean(size_b)


def test_calcifications_are_the_brightest_specks():
    rv = _render(breast=BreastSpec(density=2, size=1.0, seed=90), lesions=[_calc(False, "COARSE", subtlety=5)],
                 pixel_mm=0.1, shape=(1400, 900), label=False)
    inside_max = rv.image[rv.masks[0]].max()
    assert inside_max > np.percentile(rv.image[rv.breast_mask], 99.9)


# ---------------------------------------------------------------------------
# speed
