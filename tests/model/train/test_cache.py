"""The training cache's rules (model.train.cache), shared by training and the estimate before a retrain."""

from __future__ import annotations

import os

from model.data.preprocess import PreprocessConfig
from model.data.study_index import build_index
from model.jobs.estimate import _tiles
from model.train.cache import CACHE_SUFFIXES, NORMAL_PER_IMAGE, cache_key, is_cached, tile_count
from model.train.data import build_samples, prepare_image


def test_prepared_images_are_seen_in_the_cache_and_a_changed_mask_is_not(demo_root, tmp_path):
    index = build_index(demo_root, workers=1)
    images = [i for i in index.images if i.abnormalities][:3]
    assert len(images) == 3
    preprocess = PreprocessConfig(working_spacing_mm=0.4)
    cache = tmp_path / "cache"
    assert not any(is_cached(i, preprocess, 64, cache) for i in images)
    prepared = [prepare_image(i, preprocess, 64, cache) for i in images]
    assert all(is_cached(i, preprocess, 64, cache) for i in images)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{p.key}{s}" for p in prepared for s in CACHE_SUFFIXES)
    assert not is_cached(images[0], preprocess, 128, cache)  # another tile size is another entry
    mask = images[1].abnormalities[0].mask_path
    os.utime(mask, ns=(os.stat(mask).st_atime_ns, os.stat(mask).st_mtime_ns + 10**9))
    assert not is_cached(images[1], preprocess, 64, cache) and is_cached(images[2], preprocess, 64, cache)
    assert cache_key(images[1], preprocess, 64) != prepared[1].key


def test_the_estimate_counts_the_tiles_training_draws(demo_root, tmp_path):
    index = build_index(demo_root, workers=1)
    preprocess = PreprocessConfig(working_spacing_mm=0.4)
    full = [(i, p) for i in index.images
            if len((p := prepare_image(i, preprocess, 64, tmp_path)).normal_centers) == NORMAL_PER_IMAGE
            and len(p.lesions) == len(i.abnormalities)]
    # images as the estimate sees them before preparing: room for every lesion-free centre, every listed lesion drawn
    assert len(full) >= 4 and any(p.lesions for _, p in full)
    images, prepared = [i for i, _ in full], [p for _, p in full]
    for ratio in (0.0, 0.5, 1.0, 3.0, 100.0):
        drawn = len(build_samples(prepared, ratio, seed=3))
        assert drawn == _tiles(images, ratio)
        lesions = sum(len(p.lesions) for p in prepared)
        assert drawn == tile_count(lesions, NORMAL_PER_IMAGE * len(prepared), ratio)
    assert tile_count(4, 0, 2.0) == 4 and tile_count(0, 10, 1.0) == 1 and tile_count(3, 5, 10.0) == 8
