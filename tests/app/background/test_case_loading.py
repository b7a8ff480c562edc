"""Preparing images for the panes (worker side, no Qt): pyramid, LUT domain, outlines, problems."""

import numpy as np
import pytest

from model.data.display import window_lut
from model.data.masks import load_mask
from model.data.preprocess import chest_wall_side
from model.data.study_index import build_index

from app.background.case_loading import VoiTable, build_pyramid, full_range_window, load_case, load_image
from app.background.image_cache import ImageCache


@pytest.fixture(scope="module")
def index(demo_root):
    return build_index(demo_root)


def test_pyramid_halves_by_area_average():
    data = np.arange(1600 * 1000, dtype=np.uint16).reshape(1600, 1000) % 4000
    levels = build_pyramid(data, min_side=200)
    assert [lvl.shape for lvl in levels] == [(1600, 1000), (800, 500), (400, 250), (200, 125)]
    assert all(lvl.dtype == np.uint16 for lvl in levels)
    assert levels[1][0, 0] == pytest.approx(data[:2, :2].mean(), abs=1)


def test_loaded_image_has_domain_lut_and_chest_wall(index):
    indexed = index.images[0]
    loaded = load_image(indexed)
    lo, hi = loaded.domain
    assert loaded.levels == (lo, hi + 1)  # LUT index = value - lo exactly
    assert loaded.pyramid[0] is loaded.mammogram.pixels and loaded.pyramid[0].dtype == np.uint16
    assert loaded.chest_wall == chest_wall_side(loaded.mammogram.pixels)
    window = loaded.windows[0]
    lut = loaded.lut(window, invert=False)
    assert lut.dtype == np.uint8 and len(lut) == hi - lo + 1 <= 65_536
    assert np.array_equal(lut, window_lut(loaded.domain, window))
    assert np.array_equal(loaded.lut(window, invert=True), window_lut(loaded.domain, window, invert=True))
    assert loaded.windows[-1] == full_range_window(loaded.domain)
    assert not any(isinstance(w, VoiTable) for w in loaded.windows)  # CBIS-DDSM headers carry no VOI LUT


def test_truth_outlines_follow_the_mask(index):
    indexed = next(i for i in index.images if any(a.mask_path and not a.problem for a in i.abnormalities))
    loaded = load_image(indexed)
    assert loaded.truth
    truth = loaded.truth[0]
    ys, xs = np.nonzero(load_mask(truth.abnormality.mask_path))
    points = np.vstack(truth.outlines)
    assert points[:, 0].min() == pytest.approx(xs.min() + 0.5, abs=1)
    assert points[:, 0].max() == pytest.approx(xs.max() + 0.5, abs=1)
    assert points[:, 1].min() == pytest.approx(ys.min() + 0.5, abs=1)
    assert points[:, 1].max() == pytest.approx(ys.max() + 0.5, abs=1)


def test_masks_with_problems_are_listed_not_drawn(index):
    indexed = next((i for i in index.images if any(a.problem for a in i.abnormalities)), None)
    if indexed is None:
        pytest.skip("this demo has no mismatched mask")
    loaded = load_image(indexed)
    flagged = [a for a in indexed.abnormalities if a.problem]
    assert len(loaded.problems) >= len(flagged)
    assert all(t.abnormality.problem is None for t in loaded.truth)
    assert flagged[0].problem in " ".join(loaded.problems)


def test_load_case_reports_each_image_and_stops_when_asked(index):
    images = index.images[:3]
    events = []
    load_case(images, events.append, lambda: False)
    assert [e.indexed.path for e in events] == [i.path for i in images]
    stopped = []
    load_case(images, stopped.append, lambda: len(stopped) >= 1)
    assert len(stopped) == 1


def test_cache_evicts_oldest_but_keeps_the_case_on_screen(index):
    loaded = [load_image(i) for i in index.images[:4]]
    cache = ImageCache(capacity=2)
    cache.put(loaded[0])
    cache.put(loaded[1])
    cache.put(loaded[2], keep={loaded[0].indexed.path})
    assert loaded[0].indexed.path in cache and loaded[1].indexed.path not in cache
    assert cache.get(loaded[2].indexed.path) is loaded[2]


def _monochrome1_breast(path):
    """A MONOCHROME1 film: dense tissue stored dark, on the file's left; background stored bright."""
    from tests.conftest import make_dicom

    rows, cols = np.mgrid[0:600, 0:400]
    breast = (rows - 300) ** 2 + cols**2 < 280**2  # a half disc against the left edge
    pixels = np.where(breast, 900, 4000).astype(np.uint16)
    pixels[280:320, 60:100] = 300  # something denser
    return make_dicom(path, pixels, PhotometricInterpretation="MONOCHROME1", ImageLaterality="L", ViewPosition="CC")


def test_monochrome1_shows_inverted_and_finds_its_chest_wall(tmp_path):
    path = _monochrome1_breast(tmp_path / "mono1.dcm")
    index = build_index(path)
    loaded = load_image(index.images[0])
    assert loaded.mammogram.inverted and loaded.chest_wall == "left"
    window = loaded.windows[0]
    assert np.array_equal(loaded.lut(window, invert=False), window_lut(loaded.domain, window, invert=True))
    lo = loaded.domain[0]
    shown = loaded.lut(window, invert=False)
    assert shown[300 - lo] > shown[4000 - lo]  # dense is bright on screen
